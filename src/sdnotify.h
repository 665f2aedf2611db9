/* sdnotify.h - systemd readiness (Type=notify) without libsystemd.
 *
 * The protocol is one datagram of "KEY=VALUE\n..." text to the AF_UNIX socket named
 * by $NOTIFY_SOCKET (a path, or an abstract name written with a leading '@').
 * lexfs sends READY=1 once the mount is up (foreground mode, as lexfs@.service
 * runs it), STATUS=... lines, and STOPPING=1 at unmount.
 */
#ifndef LEXFS_SDNOTIFY_H
#define LEXFS_SDNOTIFY_H

/* Send state (e.g. "READY=1\nSTATUS=mounted") when $NOTIFY_SOCKET is set.
 * 1 sent, 0 not running under systemd (no socket), -errno on failure. */
int sd_notify_send(const char *state);

#endif
