/*
 * Unit tests of server/auth.c: passwords (scrypt), credentials held in
 * memory and checked, expiry, and what each role may do.  Prints TAP.
 */
#include "auth.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>

#define NOW INT64_C(1795000000000000)

static void expect(struct note *n, bool cond, const char *what)
{
	if (!cond)
		note_add(n, "%s", what);
}

static void passwords(struct tap *t)
{
	char a[AUTH_HASH_LEN], b[AUTH_HASH_LEN], tampered[AUTH_HASH_LEN];
	struct note n = {0};

	expect(&n, auth_password_hash("kata-sandi-1", a, sizeof(a)) == 0,
	       "hash failed");
	expect(&n, auth_password_hash("kata-sandi-1", b, sizeof(b)) == 0,
	       "second hash failed");
	expect(&n, strncmp(a, "scrypt$15$8$1$", 14) == 0,
	       "the stored form names scrypt and its cost");
	expect(&n, !strstr(a, "kata-sandi-1"), "the password is in clear");
	expect(&n, strcmp(a, b) != 0,
	       "two hashes of one password are equal "
	       "(no salt?)");
	expect(&n, auth_password_verify("kata-sandi-1", a),
	       "the right password is refused");
	expect(&n, auth_password_verify("kata-sandi-1", b),
	       "the right password is refused (second salt)");
	expect(&n, !auth_password_verify("kata-sandi-2", a),
	       "a wrong password is accepted");
	expect(&n, !auth_password_verify("", a),
	       "the empty password is "
	       "accepted");
	snprintf(tampered, sizeof(tampered), "%s", a);
	tampered[strlen(tampered) - 1] ^= 1;
	expect(&n, !auth_password_verify("kata-sandi-1", tampered),
	       "a tampered hash is accepted");
	expect(&n, !auth_password_verify("kata-sandi-1", "not a hash"),
	       "a malformed stored value is accepted");
	expect(&n, !auth_password_verify("kata-sandi-1", "scrypt$40$8$1$00$00"),
	       "an absurd cost is accepted");
	expect(&n, !auth_password_verify("", auth_password_dummy()),
	       "the dummy hash matches the empty password");
	expect(&n, auth_password_hash("x", a, 20) < 0,
	       "a too-small buffer is accepted");
	tap_case(t, "passwords: salted scrypt, verified, wrong ones refused",
		 &n);
}

static void credentials(struct tap *t)
{
	struct auth *a = auth_new();
	struct identity w = {.kind = AUTH_SCREEN, .role = ROLE_WALL},
			u = {.kind = AUTH_USER, .role = ROLE_OPERATOR};
	char st[AUTH_CREDENTIAL_LEN + 1], ss[AUTH_CREDENTIAL_LEN + 1],
	    bad[AUTH_CREDENTIAL_LEN + 1];
	const struct identity *got;
	struct note n = {0};

	expect(&n, auth_mint("st", st, w.id, w.sha256) == 0, "mint st");
	expect(&n, auth_mint("ss", ss, u.id, u.sha256) == 0, "mint ss");
	expect(&n, strlen(st) == AUTH_CREDENTIAL_LEN && !strncmp(st, "st_", 3),
	       "a screen token's form");
	snprintf(w.name, sizeof(w.name), "dinding-1");
	snprintf(u.name, sizeof(u.name), "budi");
	w.can = auth_role_can(w.role);
	u.can = auth_role_can(u.role);
	u.expires_us = NOW + 1000;
	expect(&n, auth_add(a, &w) == 0 && auth_add(a, &u) == 0, "add");
	got = auth_check(a, st, NOW);
	expect(&n, got && strcmp(got->name, "dinding-1") == 0,
	       "the screen token is not recognised");
	got = auth_check(a, ss, NOW);
	expect(&n, got && got->kind == AUTH_USER,
	       "the session is not "
	       "recognised");
	expect(&n, !auth_check(a, ss, NOW + 1000),
	       "an expired session "
	       "is accepted");
	expect(&n, !auth_live(a, u.id, NOW + 1000),
	       "an expired session is "
	       "live");
	expect(&n, auth_live(a, w.id, NOW + (INT64_C(1) << 50)),
	       "a token without expiry is not live");
	snprintf(bad, sizeof(bad), "%s", st);
	bad[AUTH_CREDENTIAL_LEN - 1] ^= 1;
	expect(&n, !auth_check(a, bad, NOW), "a wrong secret is accepted");
	snprintf(bad, sizeof(bad), "ss%s", st + 2);
	expect(&n, !auth_check(a, bad, NOW),
	       "a screen token passed as a session is accepted");
	expect(&n,
	       !auth_check(a, "", NOW) && !auth_check(a, NULL, NOW) &&
		   !auth_check(a, "st_", NOW),
	       "an empty or short credential is accepted");
	auth_remove(a, w.id);
	expect(&n, !auth_check(a, st, NOW) && auth_count(a) == 1,
	       "a removed token is accepted");
	auth_free(a);
	tap_case(t, "credentials: recognised, expired, forged, removed", &n);
}

static void roles(struct tap *t)
{
	struct note n = {0};
	static const struct {
		const char *role;
		unsigned can;
	} want[] = {
	    {"wall", CAN_READ | CAN_WALL},
	    {"operator", CAN_READ | CAN_WALL | CAN_ACK},
	    {"mayor", CAN_READ | CAN_MAYOR},
	    {"admin", CAN_READ | CAN_WALL | CAN_MAYOR | CAN_ACK | CAN_ADMIN},
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int r = auth_role_parse(want[i].role);
		if (r < 0 || auth_role_can((enum auth_role)r) != want[i].can)
			note_add(&n, "role %s: can %#x, want %#x", want[i].role,
				 r < 0 ? 0 : auth_role_can((enum auth_role)r),
				 want[i].can);
	}
	expect(&n, auth_role_parse("root") < 0, "an unknown role parses");
	expect(&n, !(auth_anonymous()->can & CAN_ADMIN),
	       "anonymous access is admin");
	tap_case(t, "roles: what each may do", &n);
}

int main(void)
{
	struct tap t = {0};

	passwords(&t);
	credentials(&t);
	roles(&t);
	return tap_done(&t);
}
