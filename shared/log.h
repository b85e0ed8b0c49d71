/*
 * log - one logging front end for the three programs (after OpenSMTPD log.c).
 *
 * log_warn() appends strerror(errno); log_warnx() does not.  Messages go to
 * syslog (facility from the config) or, in the foreground (-f), to stderr.
 * The level is checked before any formatting.  Never pass secrets here.
 * Thread-safe: syslog(3) and a single fprintf per line are.
 */
#ifndef HG_LOG_H
#define HG_LOG_H

#include <stdarg.h>

enum log_level { LOG_LEVEL_CRIT, LOG_LEVEL_ERR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* ident: program name; to_stderr: foreground mode; facility: syslog name
 * such as "mail" or "local3" (NULL = mail).  Returns -1 on an unknown facility. */
int	log_init(const char *ident, int to_stderr, const char *facility);
void	log_set_level(enum log_level level);
int	log_facility_valid(const char *facility);

void	log_crit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log at error level and exit(1). */
void	fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
