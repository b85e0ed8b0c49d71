/*
 * daemon - what both daemons do the same way when they start.
 */
#ifndef HG_DAEMON_H
#define HG_DAEMON_H

/* Detaches from the terminal (fork, setsid, stdio to /dev/null).  Call
 * before any thread is started. */
void	daemon_detach(void);
/* Writes our PID to path; fatal on failure. */
void	daemon_write_pidfile(const char *path);
/* Drops to user[:group] as one checked sequence, uid last (Postfix
 * chroot_uid.c); fatal on any failure.  No-op when already that user. */
void	daemon_drop_privileges(const char *userid);

#endif
