/*
 * server/tenant.h - a tenant (a city or regency; schema/011) as the server
 * and its pages know it.
 */
#ifndef KENDALI_TENANT_H
#define KENDALI_TENANT_H

#include <stdbool.h>

struct tenant_info {
	char id[33];
	char name[201];
	char head[65]; /* "Wali Kota", "Bupati", "Gubernur" */
	bool province;
	char time_zone[64]; /* "Asia/Jakarta" */
	char zone[16];	    /* "WIB", "WITA", "WIT", else "UTC+05:30" */
	int tz_offset_s;    /* its UTC offset now (WIB: 25200) */
};

#endif
