# mk/install.mk - "make install" and "make uninstall", included by the Makefile.
#
#   make && make install                    binaries under /usr/local, config in /usr/local/etc
#   make install SYSCONFDIR=/etc            /usr/local binaries, config where the programs look
#   make install PREFIX=/usr                /usr/sbin, /usr/bin, /etc/helpgate
#   make install DESTDIR=/tmp/stage         staged (packaging); nothing outside DESTDIR is touched
#   make install BIN=build/san/bin          install those binaries instead of bin/
#
# What goes where (GNU directory variables; override any of them):
#   $(SBINDIR)               helpgate-milter, helpgate-worker
#   $(BINDIR)                helpgatectl
#   $(HG_CONFDIR)            helpgate.conf, keywords/*.kw and triage.model, templates/*.txt, sieve/* (if shipped)
#   $(MANDIR)/man[158]       helpgatectl.1, helpgate.conf.5, helpgate-milter.8, helpgate-worker.8
#   $(SYSTEMDUNITDIR)        helpgate-milter.service, helpgate-worker.service
#   $(DOCDIR)                README.md, INSTALL, pg-milter-grants.sql
#
# Files under $(HG_CONFDIR) are the postmaster's: an existing file that
# differs from the one being installed (an edited config, a tuned keyword
# list) is never overwritten; the new one is installed beside it as
# FILE.dist-new and a note is printed.  "make uninstall" removes what
# install put there, but leaves such an edited file (and says so).
#
# install does not build: it installs what $(BIN) holds and stops with a
# message if a program is missing.  A plain "make install" (BIN not given on
# the command line) first runs "make all", so "make && make install" and
# "make install" both work; "make install BIN=..." never rebuilds anything.

PREFIX         ?= /usr/local
EXEC_PREFIX    ?= $(PREFIX)
BINDIR         ?= $(EXEC_PREFIX)/bin
SBINDIR        ?= $(EXEC_PREFIX)/sbin
DATAROOTDIR    ?= $(PREFIX)/share
DATADIR        ?= $(DATAROOTDIR)
MANDIR         ?= $(DATAROOTDIR)/man
DOCDIR         ?= $(DATAROOTDIR)/doc/helpgate
ifeq ($(PREFIX),/usr)
SYSCONFDIR     ?= /etc
else
SYSCONFDIR     ?= $(PREFIX)/etc
endif
LOCALSTATEDIR  ?= /var
RUNSTATEDIR    ?= /run
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
HG_CONFDIR     ?= $(SYSCONFDIR)/helpgate
HG_STATEDIR    ?= $(LOCALSTATEDIR)/lib/helpgate
HG_RUNDIR      ?= $(RUNSTATEDIR)/helpgate

INSTALL         ?= install
INSTALL_PROGRAM ?= $(INSTALL) -m 0755
INSTALL_DATA    ?= $(INSTALL) -m 0644

HG_SBIN_PROGS  := helpgate-milter helpgate-worker
HG_BIN_PROGS   := helpgatectl
HG_MAN         := man/helpgatectl.1 man/helpgate.conf.5 man/helpgate-milter.8 man/helpgate-worker.8
HG_UNITS       := $(wildcard conf/systemd/*.service)
HG_KEYWORDS    := $(wildcard conf/keywords/*.kw conf/keywords/triage.model)
HG_TEMPLATES   := $(wildcard conf/templates/*)
HG_SIEVE       := $(wildcard conf/sieve/*)
HG_DOCS        := README.md INSTALL conf/pg-milter-grants.sql
HG_CONFFILE    := scripts/install-conffile.sh

# The shipped config with its paths made absolute for the installed tree
# (in the source tree Database is ../var/helpgate.db and the lists are
# beside the file).  Everything else in it is left as written.
HG_RENDER_CONF = sed \
	-e 's|^Socket[[:space:]].*|Socket			unix:$(HG_RUNDIR)/milter.sock|' \
	-e 's|^Database[[:space:]].*|Database		$(HG_STATEDIR)/helpgate.db|' \
	-e 's|^KeywordsDir[[:space:]].*|KeywordsDir		$(HG_CONFDIR)/keywords|' \
	-e 's|^TemplatesDir[[:space:]].*|TemplatesDir		$(HG_CONFDIR)/templates|' \
	-e 's|^\#RelayCredentials[[:space:]].*|\#RelayCredentials	$(HG_CONFDIR)/relay.secret|' \
	-e 's|^\#DiagnoseCAFile[[:space:]].*|\#DiagnoseCAFile		$(HG_CONFDIR)/ca.pem|' \
	-e 's|^\#PidFile[[:space:]].*|\#PidFile		$(HG_RUNDIR)/milter.pid|' \
	-e 's|^\# The case store (SQLite).*|\# The case store (SQLite); its directory belongs to the helpgate user.|'
HG_RENDER_UNIT = sed \
	-e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
	-e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@HG_CONFDIR@|$(HG_CONFDIR)|g' \
	-e 's|@HG_STATEDIR@|$(HG_STATEDIR)|g' -e 's|@HG_RUNDIR@|$(HG_RUNDIR)|g'

.PHONY: install uninstall install-check-bin
install-check-bin:
	@for p in $(HG_SBIN_PROGS) $(HG_BIN_PROGS); do \
		[ -x "$(BIN)/$$p" ] || { echo "make install: $(BIN)/$$p is missing; run make first" >&2; exit 1; }; \
	done

install: $(if $(filter command line,$(origin BIN)),,all) install-check-bin
	@set -e; d='$(DESTDIR)'; \
	$(INSTALL) -d "$$d$(SBINDIR)" "$$d$(BINDIR)" "$$d$(HG_CONFDIR)" \
		"$$d$(HG_CONFDIR)/keywords" "$$d$(HG_CONFDIR)/templates" \
		"$$d$(MANDIR)/man1" "$$d$(MANDIR)/man5" "$$d$(MANDIR)/man8" \
		"$$d$(SYSTEMDUNITDIR)" "$$d$(DOCDIR)"; \
	for p in $(HG_SBIN_PROGS); do $(INSTALL_PROGRAM) "$(BIN)/$$p" "$$d$(SBINDIR)/$$p"; done; \
	for p in $(HG_BIN_PROGS); do $(INSTALL_PROGRAM) "$(BIN)/$$p" "$$d$(BINDIR)/$$p"; done; \
	for m in $(HG_MAN); do s=$${m##*.}; $(INSTALL_DATA) "$$m" "$$d$(MANDIR)/man$$s/$${m##*/}"; done; \
	for f in $(HG_DOCS); do $(INSTALL_DATA) "$$f" "$$d$(DOCDIR)/$${f##*/}"; done; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	for u in $(HG_UNITS); do \
		$(HG_RENDER_UNIT) "$$u" >"$$tmp/unit"; \
		$(INSTALL_DATA) "$$tmp/unit" "$$d$(SYSTEMDUNITDIR)/$${u##*/}"; \
	done; \
	$(HG_RENDER_CONF) conf/helpgate.conf >"$$tmp/helpgate.conf"; \
	sh $(HG_CONFFILE) install "$$tmp/helpgate.conf" "$$d$(HG_CONFDIR)/helpgate.conf"; \
	for f in $(HG_KEYWORDS); do sh $(HG_CONFFILE) install "$$f" "$$d$(HG_CONFDIR)/keywords/$${f##*/}"; done; \
	for f in $(HG_TEMPLATES); do sh $(HG_CONFFILE) install "$$f" "$$d$(HG_CONFDIR)/templates/$${f##*/}"; done; \
	if [ -n "$(HG_SIEVE)" ]; then \
		$(INSTALL) -d "$$d$(HG_CONFDIR)/sieve"; \
		for f in $(HG_SIEVE); do [ -f "$$f" ] && sh $(HG_CONFFILE) install "$$f" "$$d$(HG_CONFDIR)/sieve/$${f##*/}"; done; \
	fi; \
	echo "installed helpgate under $$d$(PREFIX), configuration in $$d$(HG_CONFDIR)"; \
	if [ "$(HG_CONFDIR)" != /etc/helpgate ]; then \
		echo "note: the programs read /etc/helpgate/helpgate.conf unless told otherwise;"; \
		echo "      use -c $(HG_CONFDIR)/helpgate.conf or HELPGATE_CONF=$(HG_CONFDIR)/helpgate.conf"; \
		echo "      (the systemd units pass -c), or install with SYSCONFDIR=/etc"; \
	fi; \
	if [ -z "$$d" ]; then \
		echo "next (see INSTALL): adduser --system --group --home $(HG_STATEDIR) helpgate;"; \
		echo "      systemctl daemon-reload; systemctl enable --now helpgate-milter helpgate-worker"; \
	fi

uninstall:
	@set -e; d='$(DESTDIR)'; \
	for p in $(HG_SBIN_PROGS); do rm -f "$$d$(SBINDIR)/$$p"; done; \
	for p in $(HG_BIN_PROGS); do rm -f "$$d$(BINDIR)/$$p"; done; \
	for m in $(HG_MAN); do s=$${m##*.}; rm -f "$$d$(MANDIR)/man$$s/$${m##*/}"; done; \
	for f in $(HG_DOCS); do rm -f "$$d$(DOCDIR)/$${f##*/}"; done; \
	rmdir "$$d$(DOCDIR)" 2>/dev/null || true; \
	for u in $(HG_UNITS); do rm -f "$$d$(SYSTEMDUNITDIR)/$${u##*/}"; done; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(HG_RENDER_CONF) conf/helpgate.conf >"$$tmp/helpgate.conf"; \
	sh $(HG_CONFFILE) remove "$$tmp/helpgate.conf" "$$d$(HG_CONFDIR)/helpgate.conf"; \
	for f in $(HG_KEYWORDS); do sh $(HG_CONFFILE) remove "$$f" "$$d$(HG_CONFDIR)/keywords/$${f##*/}"; done; \
	for f in $(HG_TEMPLATES); do sh $(HG_CONFFILE) remove "$$f" "$$d$(HG_CONFDIR)/templates/$${f##*/}"; done; \
	for f in $(HG_SIEVE); do sh $(HG_CONFFILE) remove "$$f" "$$d$(HG_CONFDIR)/sieve/$${f##*/}"; done; \
	for dir in keywords templates sieve; do rmdir "$$d$(HG_CONFDIR)/$$dir" 2>/dev/null || true; done; \
	rmdir "$$d$(HG_CONFDIR)" 2>/dev/null || true; \
	echo "removed helpgate from $$d$(PREFIX); the case database ($(HG_STATEDIR)) and the helpgate user are left alone"
