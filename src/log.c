/* log.c - the one logger. The only global state of lexfs lives here. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "src/log.h"

int log_level_current = LOG_NOTICE;
unsigned log_trace_mask;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_sink log_sink_kind = LOG_SINK_STDERR; /* guarded by log_lock */
static FILE *log_file;                                /* guarded by log_lock */
static char *log_path;                                /* guarded by log_lock */

static const struct {
	const char *name;
	unsigned bit;
} trace_names[] = {
	{ "fuse", LOGC_FUSE },   { "cache", LOGC_CACHE }, { "http", LOGC_HTTP },
	{ "store", LOGC_STORE }, { "s3", LOGC_S3 },       { "azure", LOGC_AZURE },
	{ "gcs", LOGC_GCS },     { "config", LOGC_CONFIG },
};

static const char *const level_names[] = { "emerg", "alert", "crit",   "error",
					    "warning", "notice", "info", "debug" };

int log_parse_level(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return (int)i;
	if (strcasecmp(name, "err") == 0)
		return LOG_ERR;
	if (strcasecmp(name, "warn") == 0)
		return LOG_WARNING;
	return -EINVAL;
}

int log_open(enum log_sink sink, const char *path, int level)
{
	int ret = 0;

	pthread_mutex_lock(&log_lock);
	if (log_file) {
		fclose(log_file);
		log_file = NULL;
	}
	free(log_path);
	log_path = NULL;
	log_sink_kind = sink;
	if (sink == LOG_SINK_FILE) {
		log_path = path ? strdup(path) : NULL;
		log_file = log_path ? fopen(log_path, "a") : NULL;
		if (!log_file) {
			ret = -(errno ? errno : EINVAL);
			log_sink_kind = LOG_SINK_STDERR;
		} else {
			setvbuf(log_file, NULL, _IOLBF, 0);
		}
	} else if (sink == LOG_SINK_SYSLOG) {
		openlog("lexfs", LOG_PID, LOG_DAEMON);
	}
	if (level >= 0)
		log_level_current = level;
	pthread_mutex_unlock(&log_lock);
	return ret;
}

int log_reopen(void)
{
	int ret = 0;

	pthread_mutex_lock(&log_lock);
	if (log_sink_kind == LOG_SINK_FILE && log_path) {
		FILE *f = fopen(log_path, "a");
		if (f) {
			setvbuf(f, NULL, _IOLBF, 0);
			if (log_file)
				fclose(log_file);
			log_file = f;
		} else {
			ret = -errno;
		}
	}
	pthread_mutex_unlock(&log_lock);
	return ret;
}

void log_close(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_file)
		fclose(log_file);
	log_file = NULL;
	free(log_path);
	log_path = NULL;
	if (log_sink_kind == LOG_SINK_SYSLOG)
		closelog();
	log_sink_kind = LOG_SINK_STDERR;
	pthread_mutex_unlock(&log_lock);
}

int log_set_trace(const char *list)
{
	unsigned mask = 0;
	const char *p = list;

	while (p && *p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		size_t i;

		if (len == 3 && strncmp(p, "all", 3) == 0) {
			mask = ~0u;
		} else if (len > 0) {
			for (i = 0; i < sizeof(trace_names) / sizeof(trace_names[0]); i++)
				if (strlen(trace_names[i].name) == len &&
				    strncmp(trace_names[i].name, p, len) == 0)
					break;
			if (i == sizeof(trace_names) / sizeof(trace_names[0]))
				return -EINVAL;
			mask |= trace_names[i].bit;
		}
		p = end ? end + 1 : NULL;
	}
	log_trace_mask = mask;
	if (mask && log_level_current < LOG_DEBUG)
		log_level_current = LOG_DEBUG;
	return 0;
}

void log_vmsg(int level, const char *fmt, va_list ap)
{
	char line[2048];
	char stamp[40];
	struct timespec ts;
	struct tm tm;
	int saved = errno;

	vsnprintf(line, sizeof(line), fmt, ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

	pthread_mutex_lock(&log_lock);
	if (log_sink_kind == LOG_SINK_SYSLOG) {
		syslog(level, "%s", line);
	} else {
		FILE *out = (log_sink_kind == LOG_SINK_FILE && log_file) ? log_file : stderr;
		fprintf(out, "%s.%03ldZ lexfs[%d] %s: %s\n", stamp, ts.tv_nsec / 1000000L,
			(int)getpid(),
			level >= 0 && level <= LOG_DEBUG ? level_names[level] : "?", line);
	}
	pthread_mutex_unlock(&log_lock);
	errno = saved;
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
