/* log.h - the one logger of lexfs.
 *
 * Levels are syslog's. The sink is stderr (foreground), syslog (daemon) or a file
 * (-o logfile=). The level is tested before the arguments are evaluated, so a trace
 * line costs nothing when its component is off. The logger is the only global state
 * in lexfs; it is safe to call from any thread.
 *
 * Never log a secret: credentials, signatures and presigned query strings are
 * redacted by the callers (see http.c) before they reach a log line.
 */
#ifndef LEXFS_LOG_H
#define LEXFS_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

enum log_sink { LOG_SINK_STDERR, LOG_SINK_SYSLOG, LOG_SINK_FILE };

/* Trace components, switched on with -o trace=http,cache,... */
enum log_component {
	LOGC_FUSE = 1u << 0,
	LOGC_CACHE = 1u << 1,
	LOGC_HTTP = 1u << 2,
	LOGC_STORE = 1u << 3,
	LOGC_S3 = 1u << 4,
	LOGC_AZURE = 1u << 5,
	LOGC_GCS = 1u << 6,
	LOGC_CONFIG = 1u << 7,
};

extern int log_level_current;
extern unsigned log_trace_mask;

/* Configure the sink; path is used for LOG_SINK_FILE. Returns 0 or -errno. */
int log_open(enum log_sink sink, const char *path, int level);
/* Reopen the log file (SIGUSR1, for logrotate). */
int log_reopen(void);
void log_close(void);
/* Parse "http,cache" into log_trace_mask; unknown names give -EINVAL. */
int log_set_trace(const char *list);
int log_parse_level(const char *name);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#define LOG_AT(lvl, ...)                                                                           \
	do {                                                                                       \
		if ((lvl) <= log_level_current)                                                    \
			log_msg((lvl), __VA_ARGS__);                                               \
	} while (0)

#define log_err(...) LOG_AT(LOG_ERR, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) LOG_AT(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_DEBUG, __VA_ARGS__)
#define log_trace(comp, ...)                                                                       \
	do {                                                                                       \
		if (log_trace_mask & (comp))                                                       \
			log_msg(LOG_DEBUG, __VA_ARGS__);                                           \
	} while (0)

#endif
