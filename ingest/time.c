/*
 * ingest/time.c - RFC 3339 times to and from microseconds since the epoch.
 *
 * The calendar arithmetic is done here rather than with timegm() or mktime()
 * so that the result never depends on the process's TZ or locale, and so that
 * the same code runs in the server, the tests and the fuzzer.
 */
#include <inttypes.h>
#include <stdio.h>

#include "event.h"

#define US_PER_S INT64_C(1000000)
#define S_PER_DAY INT64_C(86400)
#define US_PER_DAY (S_PER_DAY * US_PER_S)

/*
 * Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar.  The
 * year is counted from March so that the leap day falls at the end of it;
 * an era is the 400-year cycle after which the calendar repeats.
 */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;			     /* [0, 399] */
	int64_t mp = m > 2 ? m - 3 : m + 9;		     /* March is 0 */
	int64_t doy = (153 * mp + 2) / 5 + d - 1;	     /* [0, 365] */
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; /* [0, 146096] */

	return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil(). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;

	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Reads exactly n ASCII digits; signs and spaces are not digits. */
static bool read_digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/*
 * A leap second (":60") is accepted, because RFC 3339 allows it and a clock
 * that follows UTC may send one, and it is read as :59 with the same
 * fraction: Unix time has no place for it, and this keeps the times of one
 * sender in order.  Digits of the fraction after the sixth are dropped (the
 * time is truncated to the microsecond, not rounded), and at most nine are
 * accepted.  "-00:00" (offset unknown) is read as UTC.
 */
int ev_time_parse(const char *s, size_t len, int64_t *us)
{
	int year, mon, day, hour, min, sec, frac_us = 0;
	size_t i;

	if (len < 20)
		return -1;
	if (!read_digits(s, 4, &year) || s[4] != '-' ||
	    !read_digits(s + 5, 2, &mon) || s[7] != '-' ||
	    !read_digits(s + 8, 2, &day))
		return -1;
	if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
		return -1;
	if (!read_digits(s + 11, 2, &hour) || s[13] != ':' ||
	    !read_digits(s + 14, 2, &min) || s[16] != ':' ||
	    !read_digits(s + 17, 2, &sec))
		return -1;
	if (year < 1970 || mon < 1 || mon > 12 || day < 1 ||
	    day > days_in_month(year, mon) || hour > 23 || min > 59 || sec > 60)
		return -1;
	if (sec == 60)
		sec = 59;

	i = 19;
	if (s[i] == '.') {
		int ndigits = 0;

		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
			if (ndigits < 6)
				frac_us = frac_us * 10 + (s[i] - '0');
			ndigits++;
		}
		if (ndigits < 1 || ndigits > 9)
			return -1;
		for (int k = ndigits; k < 6; k++)
			frac_us *= 10;
	}

	int offset_s;

	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		offset_s = 0;
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-')) {
		int oh, om;

		if (len - i < 6 || !read_digits(s + i + 1, 2, &oh) ||
		    s[i + 3] != ':' || !read_digits(s + i + 4, 2, &om) ||
		    oh > 23 || om > 59)
			return -1;
		offset_s = (oh * 60 + om) * 60;
		if (s[i] == '-')
			offset_s = -offset_s;
		i += 6;
	} else {
		return -1;
	}
	if (i != len)
		return -1;

	int64_t secs = days_from_civil(year, mon, day) * S_PER_DAY +
		       hour * 3600 + min * 60 + sec - offset_s;

	*us = secs * US_PER_S + frac_us;
	return 0;
}

/*
 * offset_s is cut to whole minutes (toward zero) and to at most 23:59 either
 * way, the range RFC 3339 can write; the time shown is then exactly us in
 * that offset, truncated to the millisecond (toward the past, also before
 * 1970).  Years outside 0..9999 come out with more or fewer digits, which no
 * time the parser accepts can produce.
 */
size_t ev_time_format(int64_t us, int offset_s, char buf[40])
{
	const int max_off = (23 * 60 + 59) * 60;
	int64_t days, rem_us, sod;
	int64_t year;
	int mon, day, off_min;
	char sign;

	if (offset_s > max_off)
		offset_s = max_off;
	if (offset_s < -max_off)
		offset_s = -max_off;
	offset_s -= offset_s % 60;

	/* Floor division, so that times before 1970 keep a positive rest. */
	days = us / US_PER_DAY;
	rem_us = us % US_PER_DAY;
	if (rem_us < 0) {
		rem_us += US_PER_DAY;
		days--;
	}
	sod = rem_us / US_PER_S + offset_s;
	if (sod < 0) {
		sod += S_PER_DAY;
		days--;
	} else if (sod >= S_PER_DAY) {
		sod -= S_PER_DAY;
		days++;
	}
	civil_from_days(days, &year, &mon, &day);

	sign = offset_s < 0 ? '-' : '+';
	off_min = (offset_s < 0 ? -offset_s : offset_s) / 60;

	int n = snprintf(
	    buf, 40, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%03d%c%02d:%02d",
	    year, mon, day, (int)(sod / 3600), (int)(sod / 60 % 60),
	    (int)(sod % 60), (int)(rem_us % US_PER_S / 1000), sign,
	    off_min / 60, off_min % 60);

	return n < 0 ? 0 : (size_t)n;
}
