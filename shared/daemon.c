#include "daemon.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

void
daemon_drop_privileges(const char *userid)
{
	char user[128], *colon;
	struct passwd *pw;
	gid_t gid;

	snprintf(user, sizeof(user), "%s", userid);
	colon = strchr(user, ':');
	if (colon != NULL)
		*colon++ = '\0';
	if ((pw = getpwnam(user)) == NULL)
		fatalx("UserID %s: no such user", user);
	gid = pw->pw_gid;
	if (colon != NULL && *colon) {
		struct group *gr = getgrnam(colon);
		if (gr == NULL)
			fatalx("UserID %s: no such group %s", userid, colon);
		gid = gr->gr_gid;
	}
	if (getuid() == pw->pw_uid && geteuid() == pw->pw_uid)
		return;
	if (setgroups(1, &gid) != 0)
		fatal("setgroups");
	if (setgid(gid) != 0)
		fatal("setgid %u", (unsigned)gid);
	if (setuid(pw->pw_uid) != 0)
		fatal("setuid %u", (unsigned)pw->pw_uid);
	if (setuid(0) == 0)
		fatalx("privileges were not dropped");
}

void
daemon_write_pidfile(const char *path)
{
	char line[32];
	int fd, n;

	/* never through a link an attacker left there (the caller has dropped
	 * its privileges first, so this is belt and braces) */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644)) == -1)
		fatal("PidFile %s", path);
	n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (write(fd, line, (size_t)n) != n)
		fatal("PidFile %s", path);
	close(fd);
}

void
daemon_detach(void)
{
	pid_t pid = fork();

	if (pid < 0)
		fatal("fork");
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		fatal("setsid");
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
}

