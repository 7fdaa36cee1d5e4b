/*
 * tests/unit/test_buf.c
 *    The growable buffer: appends, printf past the small stack buffer, caps that cut and say so, steal and reset;
 *    the paging query readers of core/rows.h.
 */
#include "buf.h"
#include "rows.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

static void appends_grow_and_stay_terminated(void)
{
	struct buf b = {0};
	CHECK_STR(buf_str(&b), "");
	for (int i = 0; i < 1000; i++)
		buf_printf(&b, "%d,", i);
	CHECK(b.len == strlen(buf_str(&b)));
	CHECK(strncmp(buf_str(&b), "0,1,2,", 6) == 0);
	CHECK(strstr(buf_str(&b), ",999,") != NULL);
	char big[600];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_reset(&b);
	buf_printf(&b, "<%s>", big); /* longer than buf_printf's stack buffer */
	CHECK_INT(b.len, 601);
	CHECK(buf_str(&b)[600] == '>');
	buf_putc(&b, '!');
	CHECK_INT(b.len, 602);
	buf_free(&b);
	CHECK(b.p == NULL && b.len == 0);
}

static void a_cap_cuts_and_says_so(void)
{
	struct buf b = {.max = 10};
	buf_puts(&b, "12345");
	CHECK(!b.truncated);
	buf_puts(&b, "67890abc");
	CHECK(b.truncated);
	CHECK_STR(buf_str(&b), "1234567890");
	buf_puts(&b, "more");
	CHECK_STR(buf_str(&b), "1234567890");
	char *s = buf_steal(&b);
	CHECK_STR(s, "1234567890");
	CHECK(b.p == NULL && !b.truncated);
	free(s);
	s = buf_steal(&b);
	CHECK_STR(s, "");
	free(s);
}

static void limits_and_cursors(void)
{
	int lim = 0;
	int64_t cur = -1;
	CHECK(rows_limit_parse(NULL, 50, 200, &lim) && lim == 50);
	CHECK(rows_limit_parse("200", 50, 200, &lim) && lim == 200);
	CHECK(!rows_limit_parse("201", 50, 200, &lim));
	CHECK(!rows_limit_parse("0", 50, 200, &lim));
	CHECK(!rows_limit_parse("5x", 50, 200, &lim));
	CHECK(!rows_limit_parse("-1", 50, 200, &lim));
	CHECK(rows_cursor_parse("", &cur) && cur == 0);
	CHECK(rows_cursor_parse("42", &cur) && cur == 42);
	CHECK(!rows_cursor_parse("042", &cur));
	CHECK(!rows_cursor_parse("0", &cur));
	CHECK(!rows_cursor_parse("4 2", &cur));
	CHECK(!rows_cursor_parse("99999999999999999999", &cur));
}

int main(void)
{
	RUN(appends_grow_and_stay_terminated);
	RUN(a_cap_cuts_and_says_so);
	RUN(limits_and_cursors);
	return testlib_done();
}
