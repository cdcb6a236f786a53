# ringmaster - one non-recursive Makefile.
#
#   make            build bin/ringmaster and bin/ringctl
#   make test       install missing packages, build, run every test
#   make asan test  the same in build-asan/ with ASan and UBSan (make asan alone too)
#   make run        build and run the demo on etc/ringmaster.ini
#   make bench      every benchmark (bench-ring, bench-pipeline, bench-reload,
#                   bench-seed, bench-peers, bench-kafka, bench-lua-swap,
#                   bench-supervisor, bench-savepoint)
#   make deps       install the Debian packages the build needs
#   make format     clang-format every C file (format-check: fail on any that differs)
#   make install    prefix=/usr/local DESTDIR= (GNU directory names; see below)
#   make uninstall  remove what make install put there
#   make deb        build/ringmaster_VERSION_ARCH.deb (etc/debian/)
#   make clean

# Installation directories, with the GNU coding standards' names (lower
# case; override any on the command line). The upper-case PREFIX, BINDIR,
# MANDIR and INCDIR of earlier versions still work.
PREFIX        ?= /usr/local
DESTDIR       ?=
prefix        ?= $(PREFIX)
exec_prefix   ?= $(prefix)
bindir        ?= $(or $(BINDIR),$(exec_prefix)/bin)
sbindir       ?= $(exec_prefix)/sbin
datarootdir   ?= $(prefix)/share
mandir        ?= $(or $(MANDIR),$(datarootdir)/man)
docdir        ?= $(datarootdir)/doc/ringmaster
includedir    ?= $(or $(INCDIR),$(prefix)/include)
sysconfdir    ?= $(prefix)/etc
localstatedir ?= $(prefix)/var
runstatedir   ?= $(localstatedir)/run
systemdunitdir ?= $(prefix)/lib/systemd/system
bashcompdir   ?= $(datarootdir)/bash-completion/completions
# The installed configuration's directory; ringctl and ringmaster look
# there when no -c is given and ./etc/ringmaster.ini does not exist.
confdir       := $(sysconfdir)/ringmaster

VERSION  := 0.1.0
CC       ?= cc
PKG_CONFIG ?= pkg-config

# Packages: Debian names, and the pkg-config modules that prove them present.
DEB_PKGS := libzmq3-dev liblmdb-dev libinih-dev libcmocka-dev librdkafka-dev libyajl-dev \
	libluajit2-5.1-dev libmicrohttpd-dev pkg-config procps
PC_MODS  := libzmq lmdb inih cmocka rdkafka yajl luajit libmicrohttpd

ifneq ($(filter asan,$(MAKECMDGOALS)),)
ASAN := 1
endif

ifeq ($(ASAN),1)
B        := build-asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
OPT      := -O1
else
B        := build
SANFLAGS :=
OPT      := -O2
endif

# Deferred (=) so pkg-config runs after `deps` has installed what was missing.
PC_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PC_MODS) 2>/dev/null)
PC_LIBS   = $(shell $(PKG_CONFIG) --libs libzmq lmdb inih rdkafka yajl luajit libmicrohttpd 2>/dev/null)
# The ledger handler (built into the daemon, and alone for the fuzzer and the
# seed benchmark) reads JSON payloads through yajl.
JSON_LIBS   = $(shell $(PKG_CONFIG) --libs yajl 2>/dev/null)
CMOCKA_LIBS = $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)

CFLAGS   ?= $(OPT) -g
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE -DRM_VERSION=\"$(VERSION)\" $(WARN) \
	$(CFLAGS) $(SANFLAGS) -Icommon -Iworker -Isupervisor $(PC_CFLAGS) -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS)
LIBS      = $(PC_LIBS) -ldl -lm -lpthread

COMMON_SRC := $(wildcard common/*.c)
WORKER_SRC := $(wildcard worker/*.c worker/handlers/ledger*.c)
CTL_SRC    := $(wildcard supervisor/ctl/*.c)
SUP_SRC    := $(wildcard supervisor/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
BENCH_SRC  := $(wildcard tests/bench/*.c)
PLUGIN_SRC := $(filter-out worker/handlers/ledger%,$(wildcard worker/handlers/*.c))
TEST_PLUGIN_SRC := $(wildcard tests/handlers/*.c)

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

LIBCOMMON := $(B)/libcommon.a
LIBWORKER := $(B)/libworker.a
RINGMASTER := $(B)/bin/ringmaster
RINGCTL    := $(B)/bin/ringctl
UNIT_BINS  := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(UNIT_SRC))
BENCH_BINS := $(patsubst tests/bench/%.c,$(B)/tests/bench/%,$(BENCH_SRC))
PLUGINS    := $(patsubst worker/handlers/%.c,$(B)/handlers/%.so,$(PLUGIN_SRC))
TEST_PLUGINS := $(patsubst tests/handlers/%.c,$(B)/test-handlers/%.so,$(TEST_PLUGIN_SRC))

.PHONY: all asan test unit integration run bench bench-ring bench-pipeline bench-reload etc-modes soak \
	deps deps-check install uninstall clean format format-check

all: $(RINGMASTER) $(RINGCTL) $(PLUGINS)
ifeq ($(B),build)
	@mkdir -p bin
	@ln -sf ../build/bin/ringmaster bin/ringmaster
	@ln -sf ../build/bin/ringctl bin/ringctl
endif

# `make asan` alone builds and tests under the sanitizers; with `test` it is
# the same run (make does each goal once).
asan: test

# ---- packages ---------------------------------------------------------------

# Quick check on every build; installs only when something is missing.
deps-check:
	@$(PKG_CONFIG) --version >/dev/null 2>&1 && command -v pgrep >/dev/null && \
	  $(PKG_CONFIG) --exists $(PC_MODS) 2>/dev/null || $(MAKE) --no-print-directory deps

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
deps:
	@missing=""; for p in $(DEB_PKGS) $(EXTRA_DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" \
	    || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $$missing >/dev/null \
	  || { echo "deps: apt-get failed; install by hand:$$missing" >&2; exit 1; }; \
	else echo "deps: all present ($(DEB_PKGS) $(EXTRA_DEB_PKGS))"; fi

# ---- build ------------------------------------------------------------------

$(B)/obj/%.o: %.c | deps-check
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/pic/%.o: %.c | deps-check
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -c $< -o $@

# The installed configuration's path is compiled into cfg_path.o alone;
# the stamp changes (and rebuilds it) only when sysconfdir does.
$(B)/sysconfdir.stamp: FORCE
	@mkdir -p $(@D); echo '$(sysconfdir)' | cmp -s - $@ || echo '$(sysconfdir)' > $@

$(B)/obj/common/cfg_path.o: $(B)/sysconfdir.stamp
$(B)/obj/common/cfg_path.o: private ALL_CFLAGS += -DRM_SYSCONFDIR='"$(sysconfdir)"'

.PHONY: FORCE
FORCE:

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(LIBWORKER): $(call obj,$(WORKER_SRC))
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

# The daemon exports its symbols so that dlopen()ed handlers resolve rm_*.
# ringctl is a client: common/ only, never the worker library.
$(RINGMASTER): $(call obj,$(SUP_SRC)) $(LIBWORKER) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -rdynamic $^ $(LIBS) -o $@

$(RINGCTL): $(call obj,$(CTL_SRC)) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $^ $(LIBS) -o $@

$(B)/handlers/%.so: $(B)/pic/worker/handlers/%.o
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -shared $< -o $@

$(B)/test-handlers/%.so: $(B)/pic/tests/handlers/%.o
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -shared $< -o $@

# test_so_swap.sh swaps swap_tag.so for a variant with another tag, and
# refuses one that declares another ABI version.
TEST_PLUGINS += $(B)/test-handlers/swap_tag_v2.so $(B)/test-handlers/swap_tag_badabi.so
$(B)/pic/tests/handlers/swap_tag_v2.o: tests/handlers/swap_tag.c | deps-check
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -DSWAP_TAG='"v2"' -c $< -o $@
$(B)/pic/tests/handlers/swap_tag_badabi.o: tests/handlers/swap_tag.c | deps-check
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -DSWAP_ABI=999 -c $< -o $@

$(B)/tests/unit/%: $(B)/obj/tests/unit/%.o $(LIBWORKER) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -rdynamic $^ $(LIBS) $(CMOCKA_LIBS) -o $@

# test_ctx watches the store calls ctx_write_back makes, and counts the
# reads that reach the stores, through wrappers.
$(B)/tests/unit/test_ctx: private ALL_LDFLAGS += -Wl,--wrap=store_state_put,--wrap=store_state_del,--wrap=store_state_write_sorted \
	-Wl,--wrap=store_state_get,--wrap=store_table_get

$(B)/tests/bench/%: $(B)/obj/tests/bench/%.o $(LIBWORKER) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $^ $(LIBS) -o $@

# ---- run, test, bench -------------------------------------------------------

# ringmaster refuses config, table and handler files that group or others
# can write, and files under a directory they can write (strict_modes, from
# / down); a checkout or a build made under umask 002 has such files and
# directories. These take the group and others' write bit off the tree's
# own: the directories above the checkout are the user's to fix (the
# message says which and how).
etc-modes:
	@chmod go-w . etc etc/*.ini etc/*.tsv etc/*.lua
build-modes = chmod go-w $(B) $(B)/handlers $(B)/test-handlers $(wildcard $(B)/handlers/*.so $(B)/test-handlers/*.so) 2>/dev/null || true

run: all etc-modes
	@$(build-modes); tests/run-demo.sh $(B)/bin

test: $(RINGMASTER) $(RINGCTL) $(PLUGINS) $(TEST_PLUGINS) $(UNIT_BINS) $(BENCH_BINS) etc-modes
	@$(build-modes); B=$(B) ASAN=$(ASAN) tests/run.sh

bench: bench-ring bench-pipeline bench-reload bench-lua-swap bench-supervisor bench-savepoint

bench-ring: $(B)/tests/bench/ring_bench
	$(B)/tests/bench/ring_bench

bench-pipeline: $(RINGMASTER) $(RINGCTL) etc-modes
	@B=$(B) tests/bench/pipeline.sh

# Chaos for SOAK_MINUTES (default 5); not part of `make test`.
soak: $(RINGMASTER) $(RINGCTL) $(TEST_PLUGINS)
	@B=$(B) tests/soak.sh

bench-reload: $(RINGMASTER) $(RINGCTL) etc-modes
	@B=$(B) tests/bench/reload_dip.sh

# The supervisor alone: null handler, no output (issue 19).
.PHONY: bench-supervisor
bench-supervisor: $(RINGMASTER) $(RINGCTL) $(B)/test-handlers/null.so etc-modes
	@B=$(B) tests/bench/supervisor.sh
# What a savepoint costs under full load, and a data_dir from it (issue 18).
.PHONY: bench-savepoint
bench-savepoint: $(RINGMASTER) $(RINGCTL) etc-modes
	@B=$(B) tests/bench/savepoint.sh

# The dip of a live swap of etc/ledger.lua under full load (issue 15).
.PHONY: bench-lua-swap
bench-lua-swap: $(RINGMASTER) $(RINGCTL) etc-modes
	@B=$(B) tests/bench/lua_swap.sh

# How long a re-split of 100k and 1M keys takes (issue 18); KEYS= FROM= TO=.
.PHONY: bench-rescale
bench-rescale: $(RINGMASTER) $(PLUGINS) etc-modes
	@B=$(B) tests/bench/rescale.sh

# ---- install ----------------------------------------------------------------

# The installed configuration is etc/ringmaster.ini with installed paths:
# state under $(localstatedir)/lib/ringmaster, run_dir under
# $(runstatedir)/ringmaster, a zmq source on 127.0.0.1:5555 (a daemon's
# source: it runs until stopped), logs to stderr (the journal). The tables
# are installed beside it, where its relative paths find them.
INI_SED = -e '1s|.*|; ringmaster.ini - installed by make install (from etc/ringmaster.ini): a zmq source|' \
	-e 's|^name = demo      |name = ringmaster |' \
	-e 's|= \.\./var/run |= $(runstatedir)/ringmaster |' \
	-e 's|= \.\./var/|= $(localstatedir)/lib/ringmaster/|' \
	-e 's|^type = generate  |type = zmq       |' \
	-e 's|^bind = *;|bind = tcp://127.0.0.1:5555 ;|'
# The unit names the binary and the configuration by their installed paths.
UNIT_SED = -e 's|/usr/local/sbin/|$(sbindir)/|g' -e 's|/usr/local/etc/ringmaster/|$(confdir)/|g'
MAN_PAGES := $(wildcard man/*.[1-8])
EXAMPLES  := worker/handlers/example_counter.c $(wildcard etc/*.lua)
TABLES    := $(wildcard etc/*.tsv)

install: all
	@[ -z "$(SYSCONFDIR)" ] || { echo "install: SYSCONFDIR is gone: set sysconfdir=DIR, the directory" \
	  "that holds ringmaster/ (the config goes to \$$(sysconfdir)/ringmaster)" >&2; exit 2; }
	install -d $(DESTDIR)$(bindir) $(DESTDIR)$(sbindir) $(DESTDIR)$(includedir) \
	  $(DESTDIR)$(confdir) $(DESTDIR)$(docdir)/examples $(DESTDIR)$(systemdunitdir) \
	  $(DESTDIR)$(bashcompdir) $(addprefix $(DESTDIR)$(mandir)/man,1 3 5 7 8)
	install -m 0755 $(RINGMASTER) $(DESTDIR)$(sbindir)/
	install -m 0755 $(RINGCTL) $(DESTDIR)$(bindir)/
	install -m 0644 common/ringmaster.h $(DESTDIR)$(includedir)/
	for m in $(MAN_PAGES); do install -m 0644 $$m $(DESTDIR)$(mandir)/man$${m##*.}/; done
	sed $(INI_SED) etc/ringmaster.ini > $(B)/ringmaster.ini.installed
	install -m 0644 $(B)/ringmaster.ini.installed $(DESTDIR)$(confdir)/ringmaster.ini
	install -m 0644 $(TABLES) $(DESTDIR)$(confdir)/
	install -m 0644 $(EXAMPLES) $(DESTDIR)$(docdir)/examples/
	sed $(UNIT_SED) etc/ringmaster.service > $(B)/ringmaster.service.installed
	install -m 0644 $(B)/ringmaster.service.installed $(DESTDIR)$(systemdunitdir)/ringmaster.service
	install -m 0644 etc/ringmaster.bash-completion $(DESTDIR)$(bashcompdir)/ringmaster
	ln -sf ringmaster $(DESTDIR)$(bashcompdir)/ringctl

uninstall:
	rm -f $(DESTDIR)$(sbindir)/ringmaster $(DESTDIR)$(bindir)/ringctl \
	  $(DESTDIR)$(includedir)/ringmaster.h $(DESTDIR)$(systemdunitdir)/ringmaster.service \
	  $(DESTDIR)$(confdir)/ringmaster.ini $(addprefix $(DESTDIR)$(confdir)/,$(notdir $(TABLES))) \
	  $(addprefix $(DESTDIR)$(docdir)/examples/,$(notdir $(EXAMPLES))) \
	  $(DESTDIR)$(bashcompdir)/ringmaster $(DESTDIR)$(bashcompdir)/ringctl
	for m in $(MAN_PAGES); do rm -f $(DESTDIR)$(mandir)/man$${m##*.}/$${m##*/}; done
	-rmdir $(DESTDIR)$(confdir) $(DESTDIR)$(docdir)/examples $(DESTDIR)$(docdir) 2>/dev/null

# ---- Debian package ---------------------------------------------------------
# `make deb`: build/ringmaster_VERSION_ARCH.deb, from an install staged in
# build/deb/pkg/debian/ringmaster with Debian's directories, built in
# build/deb (the installed config path is compiled in), with the control
# file and maintainer scripts of etc/debian/. Depends is what
# dpkg-shlibdeps (dpkg-dev, installed here when missing) finds the binaries
# link against, plus adduser for postinst; every file under /etc is a
# conffile. dpkg-deb --root-owner-group: no fakeroot needed.
DEB_ARCH   = $(shell dpkg --print-architecture)
DEB_FILE   = build/ringmaster_$(VERSION)_$(DEB_ARCH).deb
DEB_TOP    := build/deb/pkg
DEB_ROOT   := $(DEB_TOP)/debian/ringmaster
DEB_DIRS   := prefix=/usr sysconfdir=/etc localstatedir=/var runstatedir=/run \
	systemdunitdir=/lib/systemd/system

.PHONY: deb
deb:
	@$(MAKE) --no-print-directory deps EXTRA_DEB_PKGS=dpkg-dev
	rm -rf $(DEB_TOP)
	$(MAKE) --no-print-directory B=build/deb $(DEB_DIRS) DESTDIR=$(CURDIR)/$(DEB_ROOT) install
	strip --strip-debug $(DEB_ROOT)/usr/sbin/ringmaster $(DEB_ROOT)/usr/bin/ringctl
	gzip -9n $(DEB_ROOT)/usr/share/man/man*/*
	install -d -m 0755 $(DEB_ROOT)/DEBIAN $(DEB_ROOT)/var/lib/ringmaster
	install -m 0755 etc/debian/postinst etc/debian/prerm etc/debian/postrm $(DEB_ROOT)/DEBIAN/
	cd $(DEB_ROOT) && find etc -type f | LC_ALL=C sort | sed 's|^|/|' > DEBIAN/conffiles
	printf 'Source: ringmaster\n\nPackage: ringmaster\nArchitecture: any\n' > $(DEB_TOP)/debian/control
	cd $(DEB_TOP) && dpkg-shlibdeps -O debian/ringmaster/usr/sbin/ringmaster \
	  debian/ringmaster/usr/bin/ringctl | sed -n 's/^shlibs:Depends=//p' > ../depends
	@[ -s build/deb/depends ] || { echo "deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
	sed -e 's|@VERSION@|$(VERSION)|' -e 's|@ARCH@|$(DEB_ARCH)|' \
	  -e "s|@SIZE@|$$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1)|" \
	  -e "s#@DEPENDS@#$$(cat build/deb/depends)#" etc/debian/control > $(DEB_ROOT)/DEBIAN/control
	dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $(DEB_FILE)
	@echo "deb: $(DEB_FILE)"; dpkg-deb -f $(DEB_FILE) Depends

# Every C file of the tree, formatted by .clang-format (clang-format 14,
# Debian's); `make format-check` fails on any that differs (CI runs it).
FORMAT_SRC = $(shell find common worker supervisor tests -name '*.[ch]' | LC_ALL=C sort)

format:
	clang-format -i $(FORMAT_SRC)

format-check:
	@$(MAKE) --no-print-directory deps EXTRA_DEB_PKGS=clang-format
	@clang-format --dry-run -Werror $(FORMAT_SRC) && \
	  echo "format-check: $(words $(FORMAT_SRC)) files match .clang-format"

clean:
	rm -rf build build-asan bin

-include $(shell find build build-asan -name '*.d' 2>/dev/null)

# ---- seed benchmark (issue 6) ----------------------------------------------
# `make bench-seed`: the naive design (a thread pool doing a Redis round trip
# per lookup, tests/bench/naive/naive.c, which runs the ledger handler over
# hiredis) against ringmaster on the same events; see tests/bench/seed.sh.
# Redis, hiredis, gnuplot and GNU time are installed for this target only,
# so the main build never needs them.
SEED_DEB_PKGS := redis-server libhiredis-dev gnuplot-nox time
NAIVE := $(B)/tests/bench/naive/naive
HIREDIS_CFLAGS = $(shell $(PKG_CONFIG) --cflags hiredis 2>/dev/null)
HIREDIS_LIBS = $(shell $(PKG_CONFIG) --libs hiredis 2>/dev/null)

.PHONY: bench-seed seed-deps

seed-deps:
	@$(MAKE) --no-print-directory deps EXTRA_DEB_PKGS="$(SEED_DEB_PKGS)"

$(B)/obj/tests/bench/naive/naive.o: tests/bench/naive/naive.c | seed-deps
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(HIREDIS_CFLAGS) -c $< -o $@

$(NAIVE): $(B)/obj/tests/bench/naive/naive.o $(call obj,worker/handlers/ledger.c)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $^ $(HIREDIS_LIBS) $(JSON_LIBS) -lpthread -o $@

bench-seed: seed-deps $(RINGMASTER) $(RINGCTL) $(NAIVE) etc-modes
	@B=$(B) tests/bench/seed.sh

bench: bench-seed
# ---- end of seed benchmark (issue 6) ---------------------------------------

# ---- peers benchmark (issue 19) --------------------------------------------
# `make bench-peers`: ringmaster against the limit of this machine
# (tests/bench/limit.c: the ledger in one thread over hash maps, no
# durability) and against what a user would build instead: SQLite, Redis
# with the ledger as a Redis Function, PostgreSQL with PL/pgSQL; see
# tests/bench/peers.sh. The peers' packages are installed for this target
# only (make peers-deps). The limit program needs nothing more than the main
# build and is tested in `make test` (test_limit.sh).
PEERS_DEB_PKGS := redis-server libhiredis-dev libsqlite3-dev postgresql libpq-dev gnuplot-nox time
LIMIT := $(B)/tests/bench/limit
PEER_SQLITE := $(B)/tests/bench/peers/peer_sqlite
PEER_REDIS := $(B)/tests/bench/peers/peer_redis
PEER_PG := $(B)/tests/bench/peers/peer_pg
PG_CFLAGS = -I$(shell pg_config --includedir 2>/dev/null)

.PHONY: bench-peers peers-deps

peers-deps:
	@$(MAKE) --no-print-directory deps EXTRA_DEB_PKGS="$(PEERS_DEB_PKGS)"

# tests/unit/test_benchio.c tests what the limit and the peers share.
$(B)/tests/unit/test_benchio: $(call obj,tests/bench/peers/benchio.c)

$(LIMIT): $(call obj,tests/bench/limit.c tests/bench/peers/benchio.c worker/handlers/ledger.c)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $^ $(JSON_LIBS) -o $@

# Only the peers need the peers' packages; benchio.o and the limit do not.
$(call obj,$(wildcard tests/bench/peers/peer_*.c)): $(B)/obj/%.o: %.c | peers-deps
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(HIREDIS_CFLAGS) $(PG_CFLAGS) -c $< -o $@

$(PEER_SQLITE): $(call obj,tests/bench/peers/peer_sqlite.c tests/bench/peers/benchio.c \
		worker/handlers/ledger.c)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $^ -lsqlite3 $(JSON_LIBS) -o $@

$(PEER_REDIS): $(call obj,tests/bench/peers/peer_redis.c tests/bench/peers/benchio.c)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $^ $(HIREDIS_LIBS) -lpthread -o $@

$(PEER_PG): $(call obj,tests/bench/peers/peer_pg.c tests/bench/peers/benchio.c)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $^ -lpq -lpthread -o $@

bench-peers: peers-deps $(RINGMASTER) $(RINGCTL) $(LIMIT) $(PEER_SQLITE) $(PEER_REDIS) $(PEER_PG) etc-modes
	@B=$(B) tests/bench/peers.sh

bench: bench-peers
# ---- end of peers benchmark (issue 19) -------------------------------------

# ---- fuzzing ----------------------------------------------------------------
# libFuzzer targets: tests/fuzz/fuzz_NAME.c drives one parser and is built
# with clang, ASan and UBSan into $(B)/fuzz/, together with the code it
# drives (FUZZ_DEPS_NAME, by default common/NAME.c; compiled with the target
# so the fuzzer sees its branches). `make fuzz` runs each for FUZZ_SECONDS on
# a working copy of its seed corpus tests/fuzz/corpus/NAME; `make test`
# builds them and tests/integration/test_fuzz.sh runs each for a few seconds,
# so a regression fails the tests. The tests also need tmux (ringctl top), jq
# (JSON output), man (the man pages' lint) and valgrind (test_valgrind.sh).
DEB_PKGS     += clang libclang-rt-14-dev tmux jq man-db valgrind
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))
FUZZ_BINS    := $(patsubst %,$(B)/fuzz/fuzz_%,$(FUZZ_NAMES))
FUZZ_HDRS    := $(wildcard common/*.h worker/handlers/*.h tests/fuzz/*.h)
FUZZ_CFLAGS   = -std=gnu11 -D_GNU_SOURCE -g -O1 $(WARN) -Icommon -Iworker/handlers -Itests/fuzz \
	$(PC_CFLAGS) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
FUZZ_INIH_LIBS = $(shell $(PKG_CONFIG) --libs inih 2>/dev/null)

# Beyond common/NAME.c: cfg_* drive cfg.c (which logs through log.c and
# reads through inih), the two cfg_load targets share their checks.
FUZZ_DEPS_cfg_value    := common/cfg.c common/log.c common/utf8.c
FUZZ_DEPS_cfg_file     := common/cfg.c common/log.c common/utf8.c tests/fuzz/cfg_props.c
FUZZ_DEPS_cfg_override := $(FUZZ_DEPS_cfg_file)
FUZZ_DEPS_ledger       := worker/handlers/ledger.c
FUZZ_DEPS_event_json   := common/event.c
FUZZ_DEPS_proto        := common/proto.c common/utf8.c
FUZZ_LIBS_cfg_value     = $(FUZZ_INIH_LIBS)
FUZZ_LIBS_cfg_file      = $(FUZZ_INIH_LIBS)
FUZZ_LIBS_cfg_override  = $(FUZZ_INIH_LIBS)
FUZZ_LIBS_event         = $(JSON_LIBS)
FUZZ_LIBS_ledger        = $(JSON_LIBS)
FUZZ_LIBS_event_json    = $(JSON_LIBS)

.PHONY: fuzz deps-tools

# Installs the packages above when a tool, or clang's libFuzzer runtime, is
# missing (deps-check only looks at the libraries).
deps-tools:
	@for t in $(FUZZ_CC) tmux jq man valgrind; do command -v $$t >/dev/null || missing=1; done; \
	if [ -z "$$missing" ]; then printf 'int LLVMFuzzerTestOneInput(const char *d, long n);\nint LLVMFuzzerTestOneInput(const char *d, long n) { return (int)(d[0] * 0 + n * 0); }\n' \
	  | $(FUZZ_CC) -x c -fsanitize=fuzzer - -o /dev/null 2>/dev/null || missing=1; fi; \
	[ -z "$$missing" ] || $(MAKE) --no-print-directory deps

# One rule per target; libraries are expanded when the recipe runs, after
# deps-check has installed them.
define FUZZ_RULE
$(B)/fuzz/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(or $(FUZZ_DEPS_$(1)),common/$(1).c) $(FUZZ_HDRS) \
		| deps-check deps-tools
	@mkdir -p $$(@D)
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) $$(filter %.c,$$^) $$(FUZZ_LIBS_$(1)) -o $$@
endef
$(foreach n,$(FUZZ_NAMES),$(eval $(call FUZZ_RULE,$(n))))

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do n=$${f##*/fuzz_}; mkdir -p $(B)/fuzz/corpus-$$n; \
	  echo "fuzz: $$f for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=$(B)/fuzz/ $(B)/fuzz/corpus-$$n tests/fuzz/corpus/$$n || exit 1; \
	done

test: $(FUZZ_BINS)
# ---- end of fuzzing ---------------------------------------------------------

# ---- Kafka tests (issue 8) --------------------------------------------------
# $(B)/tests/kafka_mock: a librdkafka mock cluster on loopback ports with the
# test's topics and events (tests/integration/kafka_mock.c), so that
# tests/integration/test_kafka*.sh need no broker.
KAFKA_MOCK := $(B)/tests/kafka_mock

$(KAFKA_MOCK): $(B)/obj/tests/integration/kafka_mock.o
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $^ $(PC_LIBS) -o $@

test: $(KAFKA_MOCK)

# `make bench-kafka` (issue 20): ringmaster's Kafka source against a plain
# librdkafka consumer (tests/bench/kafka_consume.c) on the mock cluster;
# see tests/bench/kafka.sh (N, ROUNDS, BROKERS, PARTS).
.PHONY: bench-kafka
bench-kafka: $(RINGMASTER) $(RINGCTL) $(KAFKA_MOCK) $(B)/tests/bench/kafka_consume etc-modes
	@B=$(B) tests/bench/kafka.sh

bench: bench-kafka
# ---- end of Kafka tests -----------------------------------------------------

# ---- control socket client (issue 12) ---------------------------------------
# $(B)/tests/control_client: a raw client of the control socket for the
# integration tests (tests/integration/control_client.c): requests ringctl
# never sends, connections held open by the hundred, timed round trips.
CONTROL_CLIENT := $(B)/tests/control_client

$(CONTROL_CLIENT): $(B)/obj/tests/integration/control_client.o $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $^ -o $@

test: $(CONTROL_CLIENT)
# ---- end of control socket client -------------------------------------------

# $(B)/tests/logcheck: every log record a test produced is logfmt a strict
# parser reads (tests/integration/logcheck.c, run by lib.sh at each test's end).
LOGCHECK := $(B)/tests/logcheck

$(LOGCHECK): $(B)/obj/tests/integration/logcheck.o
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $^ -o $@

test: $(LOGCHECK)

# ---- fault injection (issue 11) ---------------------------------------------
# $(B)/tests/libfailsync.so: fsync/fdatasync fail with EIO on demand
# (tests/faults/failsync.c). An LD_PRELOAD library, built without the
# sanitizers even in build-asan/: it is loaded before their runtime.
FAILSYNC := $(B)/tests/libfailsync.so

$(FAILSYNC): tests/faults/failsync.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -D_GNU_SOURCE $(WARN) -O2 -fPIC -shared $< -ldl -o $@

test: $(FAILSYNC)
# ---- end of fault injection -------------------------------------------------

# ---- Prometheus (issue 16) --------------------------------------------------
# tests/integration/test_prometheus.sh runs a real Prometheus against a
# running ringmaster's [control] http endpoint and checks its answers with
# promtool; Debian's prometheus package is installed for the tests only
# (not under make asan, where that test skips).
PROMETHEUS_DEB_PKGS := prometheus curl

.PHONY: deps-prometheus
deps-prometheus:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v curl >/dev/null \
	  || $(MAKE) --no-print-directory deps EXTRA_DEB_PKGS="$(PROMETHEUS_DEB_PKGS)"

ifneq ($(ASAN),1)
test: deps-prometheus
endif
# ---- end of Prometheus ------------------------------------------------------

# ---- power-cut harness ------------------------------------------------------
# tests/powercut: libpowercut.so, preloaded into the processes under test,
# records what an fsync or an O_DSYNC write makes durable under a tree;
# pctool init/restore turns that tree into what a power cut would leave;
# pc_selftest drives tests/integration/test_powercut_harness.sh. The
# library is built without the sanitizers even in build-asan: it is
# preloaded ahead of them into sanitized and plain programs alike.
POWERCUT_LIB      := $(B)/tests/libpowercut.so
POWERCUT_TOOL     := $(B)/tests/pctool
POWERCUT_SELFTEST := $(B)/tests/pc_selftest
POWERCUT_HDRS     := tests/powercut/pc_shadow.h

$(POWERCUT_LIB): tests/powercut/powercut.c tests/powercut/pc_shadow.c $(POWERCUT_HDRS)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -fPIC -shared \
	  $(filter %.c,$^) -ldl -o $@

$(POWERCUT_TOOL): $(call obj,tests/powercut/pctool.c tests/powercut/pc_shadow.c)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $^ -o $@

$(POWERCUT_SELFTEST): $(call obj,tests/powercut/pc_selftest.c)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $^ -llmdb -o $@

# `make powercut` builds the three; so does naming one by its absolute path.
.PHONY: powercut
powercut: $(POWERCUT_LIB) $(POWERCUT_TOOL) $(POWERCUT_SELFTEST)
$(abspath $(POWERCUT_LIB) $(POWERCUT_TOOL) $(POWERCUT_SELFTEST)): $(CURDIR)/%: %
	@:

test: $(POWERCUT_LIB) $(POWERCUT_TOOL) $(POWERCUT_SELFTEST)
# ---- end of power-cut harness -----------------------------------------------
