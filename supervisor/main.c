/* main.c - ringmaster's command line: parse options, load the config, and
 * either check it (-t) or hand it to the supervisor. */
#include "cfg.h"
#include "handler.h"
#include "log.h"
#include "proctitle.h"
#include "rescale_sup.h"
#include "safety.h"
#include "savepoint.h"
#include "store.h"
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#define MAX_OVERRIDES 256

static void usage(FILE *f)
{
	fprintf(f, "usage: ringmaster [-t] -c FILE [-o section.key=value ...] [--summary FILE]\n"
		   "                  [--force-recover] [--from-savepoint DIR] [--rescale]\n"
		   "       ringmaster --version | --help\n"
		   "\n"
		   "  -c, --config FILE     configuration file (INI), see ringmaster.ini(5)\n"
		   "  -o, --set S.K=V       override a setting of FILE (repeatable)\n"
		   "  -t, --test            check the configuration and exit\n"
		   "      --summary FILE    write the end-of-run summary as JSON to FILE\n"
		   "      --force-recover   resume from a data_dir that sync = none left\n"
		   "                        across a reboot (it may have lost events)\n"
		   "      --from-savepoint DIR  make the (empty or new) data_dir from the\n"
		   "                        savepoint DIR first, then run from its position\n"
		   "      --rescale         re-split a cleanly stopped data_dir's state for\n"
		   "                        the configured partitions, then run\n"
		   "      --list-settings   print every setting (section.key) and exit\n"
		   "  -V, --version         print the version and exit\n"
		   "  -h, --help            print this help and exit\n"
		   "\n"
		   "Exit status (see ringmaster(8)):\n"
		   "   0  ok, also after a graceful stop\n"
		   "   1  a worker or a partition failed, events were held back, the source\n"
		   "      could not be read, or a second stop request killed the workers\n"
		   "  64  usage error\n"
		   "  65  a data_dir that sync = none left across a reboot (--force-recover),\n"
		   "      or a savepoint that fails its verification (--from-savepoint)\n"
		   "  71  a system resource failed: memory, fork, address space (ulimit -v:\n"
		   "      lower [store] map_size), file descriptors, or the fork server died\n"
		   "  73  the run_dir, the data_dir or an output file cannot be set up or is\n"
		   "      another's (another instance, another data_dir, another user)\n"
		   "  75  stopped while waiting for a previous instance's workers (--rescale:\n"
		   "      one still holds a shard), or Kafka offsets that could not be committed\n"
		   "  78  configuration error: the INI file, a table or the handler is wrong\n"
		   "      or unsafe (strict_modes), the data_dir was made for another\n"
		   "      partition count or source, or --rescale was refused\n");
}

struct options {
	const char *config;
	const char *summary;
	int test_only;
	int force_recover;
	const char *from_savepoint; /* --from-savepoint DIR */
	int rescale;
	char *overrides[MAX_OVERRIDES];
	size_t n_overrides;
};

/* Returns -1 to exit 0 (help, version), EX_USAGE on bad usage, 0 to go on. */
static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"set", required_argument, NULL, 'o'},
	    {"test", no_argument, NULL, 't'},
	    {"summary", required_argument, NULL, 'S'},
	    {"force-recover", no_argument, NULL, 'F'},
	    {"from-savepoint", required_argument, NULL, 'P'},
	    {"rescale", no_argument, NULL, 'R'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {"list-settings", no_argument, NULL, 'L'},
	    {NULL, 0, NULL, 0},
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "c:o:tVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 'o':
			if (o->n_overrides == MAX_OVERRIDES) {
				fprintf(stderr, "ringmaster: more than %d -o overrides\n",
					MAX_OVERRIDES);
				return EX_USAGE;
			}
			o->overrides[o->n_overrides++] = optarg;
			break;
		case 't':
			o->test_only = 1;
			break;
		case 'S':
			o->summary = optarg;
			break;
		case 'F':
			o->force_recover = 1;
			break;
		case 'P':
			o->from_savepoint = optarg;
			break;
		case 'R':
			o->rescale = 1;
			break;
		case 'V':
			printf("ringmaster %s\n", RM_VERSION);
			return -1;
		case 'L':
			cfg_list_settings(stdout);
			return -1;
		case 'h':
			usage(stdout);
			return -1;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringmaster: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EX_USAGE;
	}
	if (!o->config) {
		fprintf(stderr,
			"ringmaster: no configuration file; give one with -c FILE (the installed "
			"one is %s)\n",
			cfg_installed_path());
		usage(stderr);
		return EX_USAGE;
	}
	return 0;
}

/* -t: the INI, then what it names (source file, tables, directories,
 * handler), all reported. The handler is loaded in a child: its
 * constructors run there. */
static int check_config(const struct options *o, const struct cfg *cfg)
{
	char errs[8192] = "", err[2048];
	int bad = 0, fd;
	if (cfg->source_type == CFG_SOURCE_FILE && strcmp(cfg->source_path, "-") != 0) {
		if ((fd = open(cfg->source_path, O_RDONLY | O_CLOEXEC)) < 0) {
			fprintf(stderr, "%s: [source] path = %s: cannot open the source file: %s\n",
				cfg_origin(cfg, "source", "path"), cfg->source_path,
				strerror(errno));
			bad = 1;
		} else {
			close(fd);
		}
	}
	if (cfg->source_type == CFG_SOURCE_SPOOL) {
		if ((fd = open(cfg->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
			fprintf(stderr,
				"%s: [source] dir = %s: cannot open the spool directory: %s\n",
				cfg_origin(cfg, "source", "dir"), cfg->spool_dir, strerror(errno));
			bad = 1;
		} else {
			close(fd);
		}
	}
	if (store_config_check(cfg, errs, sizeof(errs)) != 0) {
		fputs(errs, stderr);
		bad = 1;
	}
	errs[0] = '\0';
	if (safety_check_files(cfg, o->config, errs, sizeof(errs)) != 0) {
		fputs(errs, stderr);
		bad = 1;
	}
	errs[0] = '\0';
	if (safety_check_dirs(cfg, errs, sizeof(errs)) != 0) {
		fputs(errs, stderr);
		bad = 1;
	}
	if (handler_open(cfg, &fd, err, sizeof(err)) != 0 ||
	    handler_check(cfg, fd, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		bad = 1;
	} else {
		fputs(err, stderr); /* warnings: settings the handler never reads */
	}
	if (fd >= 0)
		close(fd);
	if (bad)
		return EX_CONFIG;
	printf("%s: configuration ok\n", o->config);
	return 0;
}

/* The command line as given: proctitle_set writes over argv's strings, and
 * ringctl rescale starts ringmaster again with it. */
static char **copy_args(int argc, char **argv)
{
	char **copy = calloc((size_t)argc + 1, sizeof(*copy));
	for (int i = 0; copy && i < argc; i++)
		if (!(copy[i] = strdup(argv[i])))
			return NULL; /* exits at once: nothing to free */
	return copy;
}

int main(int argc, char **argv)
{
	char **args = copy_args(argc, argv);
	if (!args) {
		fprintf(stderr, "ringmaster: out of memory\n");
		return EX_OSERR;
	}
	proctitle_init(argc, argv);
	struct options o = {0};
	struct sup s = {0};
	int rc = parse_options(argc, argv, &o);
	if (rc) {
		rc = rc < 0 ? 0 : rc;
		goto out;
	}
	s = (struct sup){.config_path = o.config,
			 .overrides = o.overrides,
			 .n_overrides = o.n_overrides,
			 .summary_path = o.summary,
			 .force_recover = o.force_recover,
			 .rescale = o.rescale};
	struct cfg_errors errs = {0};
	if (cfg_load(o.config, o.overrides, o.n_overrides, &s.cfg, &errs) != 0) {
		fputs(errs.text ? errs.text : "configuration error\n", stderr);
		fprintf(stderr, "%s: configuration has %u error%s\n", o.config, errs.count,
			errs.count == 1 ? "" : "s");
		cfg_errors_free(&errs);
		rc = EX_CONFIG;
		goto out;
	}
	log_init("supervisor", s.cfg.log_level);
	log_set_format(s.cfg.log_format);
	if (o.test_only)
		rc = check_config(&o, &s.cfg);
	else if (!o.from_savepoint || (rc = sup_from_savepoint(&s.cfg, o.from_savepoint)) == 0)
		rc = sup_run(&s);
	if (s.rescale_to)
		rc = rsc_exec(&s, rc, argc, args);
	cfg_free(&s.cfg);
out:
	for (int i = 0; i < argc; i++)
		free(args[i]);
	free(args);
	return rc;
}
