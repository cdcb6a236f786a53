/* ringctl.c - the operator's tool. Some commands read a data directory
 * directly (state, dump-state: they work whether ringmaster runs or not),
 * some need nothing but their arguments (gen); the others talk to a running
 * ringmaster through its control socket (ctl_remote.c, ctl_top.c).
 *
 * Exit status: 0 ok, 1 the command failed, 2 usage, 3 cannot connect to the
 * control socket, 78 configuration error. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "cfg.h"
#include "ctl.h"
#include "log.h"

#define MAX_OVERRIDES 64

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ringctl [-c FILE | -s SOCKET] [-o section.key=value ...] [--json]\n"
		"               [-t TIMEOUT] COMMAND [ARGS]\n"
		"\n"
		"commands:\n"
		"  state KEY          a key's state and partition (reads the shards)\n"
		"  dump-state         every key and its state, sorted by key\n"
		"  load-state [--replace] FILE\n"
		"                     dump-state's text into a stopped data_dir (- for stdin)\n"
		"  forget-replay N    close replay N, unfinished, in a stopped data_dir\n"
		"  gen events [--events N] [--keys N] [--seed N] [--skew X]\n"
		"  gen accounts [--keys N] [--seed N]\n"
		"  gen rules          generated ledger data, as TSV on stdout\n"
		"  send [-e ENDPOINT] [--frames] [FILE]\n"
		"                     push TSV lines to a zmq source (default: [source] bind)\n"
		"\n"
		"  -c, --config FILE  ringmaster's configuration (default: etc/ringmaster.ini if\n"
		"                     it exists, else %s)\n"
		"  -o, --set S.K=V    override a setting of FILE (repeatable)\n"
		"  -V, --version      print the version\n"
		"  -h, --help         print this help\n",
		cfg_installed_path());
	ctl_remote_usage(f);
}

struct ctl_opts {
	const char *config;
	char *overrides[MAX_OVERRIDES];
	size_t n_overrides;
	const char *socket; /* -s: instead of the config's run_dir */
	int timeout_ms;	    /* -t */
	int json;	    /* --json */
};

static int load_cfg(const struct ctl_opts *o, struct cfg *cfg)
{
	struct cfg_errors errs = {0};
	if (cfg_load(o->config, o->overrides, o->n_overrides, cfg, &errs) == 0)
		return 0;
	fputs(errs.text ? errs.text : "configuration error\n", stderr);
	cfg_errors_free(&errs);
	return -1;
}

static int run_with_cfg(const struct ctl_opts *o, int argc, char **argv)
{
	struct cfg cfg;
	if (load_cfg(o, &cfg) != 0)
		return EX_CONFIG;
	log_init("ringctl", cfg.log_level);
	log_set_format(cfg.log_format);
	int rc;
	if (strcmp(argv[0], "state") == 0)
		rc = ctl_state(&cfg, argc, argv);
	else if (strcmp(argv[0], "load-state") == 0)
		rc = ctl_load_state(&cfg, argc, argv);
	else if (strcmp(argv[0], "forget-replay") == 0)
		rc = ctl_forget_replay(&cfg, argc, argv);
	else
		rc = ctl_dump_state(&cfg, argc, argv);
	cfg_free(&cfg);
	return rc;
}

/* A control-socket command: the socket is -s, or run_dir's. */
static int run_remote(const struct ctl_opts *o, int argc, char **argv)
{
	struct cfg cfg;
	if (!o->socket && load_cfg(o, &cfg) != 0)
		return EX_CONFIG;
	int rc = ctl_remote_main(o->socket, o->socket ? NULL : cfg.run_dir, o->timeout_ms, o->json,
				 argc, argv);
	if (!o->socket)
		cfg_free(&cfg);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"set", required_argument, NULL, 'o'},
	    {"socket", required_argument, NULL, 's'},
	    {"timeout", required_argument, NULL, 't'},
	    {"json", no_argument, NULL, 'J'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {"list-settings", no_argument, NULL, 'L'},
	    {NULL, 0, NULL, 0},
	};
	struct ctl_opts o = {.config = NULL, .timeout_ms = CTL_TIMEOUT_MS};
	int ch;
	/* '+': stop at the command, so its own options are left to it. */
	while ((ch = getopt_long(argc, argv, "+c:o:s:t:Vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o.config = optarg;
			break;
		case 'o':
			if (o.n_overrides == MAX_OVERRIDES) {
				fprintf(stderr, "ringctl: too many -o overrides\n");
				return 2;
			}
			o.overrides[o.n_overrides++] = optarg;
			break;
		case 's':
			o.socket = optarg;
			break;
		case 't':
			if (ctl_parse_timeout(optarg, &o.timeout_ms) != 0)
				return 2;
			break;
		case 'J':
			o.json = 1;
			break;
		case 'V':
			printf("ringctl %s\n", RM_VERSION);
			return 0;
		case 'L':
			cfg_list_settings(stdout);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "ringctl: no command given\n");
		usage(stderr);
		return 2;
	}
	if (!o.config)
		o.config = cfg_default_path();
	char **cmd = argv + optind;
	int n = argc - optind;
	optind = 0; /* subcommands parse their own options (0: from scratch) */
	if (strcmp(cmd[0], "gen") == 0)
		return ctl_gen(n, cmd);
	if (strcmp(cmd[0], "send") == 0)
		return ctl_send(o.config, o.overrides, o.n_overrides, n, cmd);
	if (strcmp(cmd[0], "state") == 0 || strcmp(cmd[0], "dump-state") == 0 ||
	    strcmp(cmd[0], "load-state") == 0 || strcmp(cmd[0], "forget-replay") == 0)
		return run_with_cfg(&o, n, cmd);
	if (strcmp(cmd[0], "savepoint") == 0 && n > 1 && strcmp(cmd[1], "--verify") == 0)
		return ctl_savepoint_verify(n, cmd);
	if (ctl_is_remote(cmd[0]))
		return run_remote(&o, n, cmd);
	fprintf(stderr, "ringctl: unknown command '%s'\n", cmd[0]);
	usage(stderr);
	return 2;
}
