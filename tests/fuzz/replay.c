/*
 * tests/fuzz/replay.c
 *    A main() for the fuzz targets without libFuzzer: runs LLVMFuzzerTestOneInput once on every file of the
 *    directories (or files) named on the command line. `make test` builds each target with it (label unit) and
 *    replays its seed corpus, so an input that once crashed stays a regression test; `make fuzz` links libFuzzer.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cannot open %s\n", path);
		return 1;
	}
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			uint8_t *bigger = realloc(buf, cap * 2);
			if (!bigger) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = bigger;
			cap *= 2;
		}
	}
	fclose(f);
	if (!buf)
		return 1;
	/* an exact-size copy, so that ASan sees a read past the input */
	uint8_t *exact = malloc(n ? n : 1);
	if (!exact) {
		free(buf);
		return 1;
	}
	memcpy(exact, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	return 0;
}

int main(int argc, char **argv)
{
	int ran = 0, bad = 0;
	for (int i = 1; i < argc; i++) {
		struct stat sb;
		if (stat(argv[i], &sb) != 0) {
			fprintf(stderr, "no such input: %s\n", argv[i]);
			return 1;
		}
		if (!S_ISDIR(sb.st_mode)) {
			bad += run_file(argv[i]);
			ran++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		struct dirent *e;
		while (d && (e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			bad += run_file(path);
			ran++;
		}
		if (d)
			closedir(d);
	}
	printf("%d inputs replayed\n", ran);
	return bad || ran == 0 ? 1 : 0;
}
