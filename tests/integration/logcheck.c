/* logcheck.c - every log record in the files named is logfmt that a strict
 * parser reads: key=value pairs one space apart, keys [a-z0-9_], a value
 * bare (no space, quote, equals or control byte) or quoted with JSON's
 * escapes, beginning ts, level, proc, pid, msg. A record is a line that
 * starts with "ts=TIME level="; other lines (summaries, ringctl's messages,
 * another program's log) are not records. Prints each bad line as FILE:LINE: why, and exits 1 if
 * any. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *check(const char *p)
{
	static const char *const first[] = {"ts", "level", "proc", "pid", "msg"};
	size_t nth = 0;
	while (*p) {
		const char *k = p;
		while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
			p++;
		if (p == k || *p != '=')
			return "a key is [a-z0-9_]+ followed by '='";
		if (nth < 5 && ((size_t)(p - k) != strlen(first[nth]) ||
				memcmp(k, first[nth], (size_t)(p - k)) != 0))
			return "the first keys are ts, level, proc, pid, msg";
		nth++;
		p++;
		if (*p == '"') {
			for (p++; *p != '"'; p++) {
				if (*p == '\0' || (unsigned char)*p < 0x20)
					return "a quoted value is not closed on its line";
				if (*p == '\\') {
					p++;
					if (*p == 'u') {
						for (int i = 1; i <= 4; i++)
							if (!strchr("0123456789abcdefABCDEF",
								    p[i]) ||
							    !p[i])
								return "a bad \\u escape";
						p += 4;
					} else if (!*p || !strchr("\"\\/bfnrt", *p)) {
						return "a bad escape";
					}
				}
			}
			p++;
		} else {
			const char *v = p;
			while (*p && *p != ' ') {
				if (*p == '"' || *p == '=' || (unsigned char)*p < 0x20)
					return "a bare value holds a quote, '=' or a control byte";
				p++;
			}
			if (p == v)
				return "an empty value is not quoted";
		}
		if (*p == ' ' && p[1] != '\0')
			p++;
		else if (*p)
			return "pairs are one space apart";
	}
	return nth >= 5 ? NULL : "a record has ts, level, proc, pid and msg";
}

int main(int argc, char **argv)
{
	int bad = 0;
	char *line = NULL;
	size_t cap = 0;
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "r");
		if (!f) {
			perror(argv[i]);
			bad = 1;
			continue;
		}
		ssize_t n;
		for (unsigned long no = 1; (n = getline(&line, &cap, f)) >= 0; no++) {
			if (n && line[n - 1] == '\n')
				line[--n] = '\0';
			/* ours: ts=TIME level=...; another program's logfmt
			 * (Prometheus's: ts=... caller=...) is not checked */
			const char *sp = strchr(line, ' ');
			if (strncmp(line, "ts=", 3) != 0 || !sp ||
			    strncmp(sp + 1, "level=", 6) != 0)
				continue;
			const char *why = check(line);
			if (why) {
				printf("%s:%lu: %s: %.200s\n", argv[i], no, why, line);
				bad = 1;
			}
		}
		fclose(f);
	}
	free(line);
	return bad;
}
