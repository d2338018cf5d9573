/*
 * test_crypt.c - checkpoint encryption (checkpoint/ckpt_crypt.c): part
 * round trip, a flipped bit anywhere (ciphertext or tag) or the wrong part
 * index refused, nonces unique per part and per checkpoint, the data key
 * unwraps only with the right user key and the same job and seq, the
 * manifest MAC depends on every byte, key files of 32 bytes or 64 hex.
 */
#include "check.h"

#include <fcntl.h>

#include "ckpt_int.h"

static const unsigned char UKEY[CKPT_KEY_LEN] = "0123456789abcdef0123456789abcde";

static void part_round_trip_and_tamper(void)
{
	struct ckpt_crypt c;
	unsigned char buf[1000 + CKPT_TAG_LEN], plain[1000];
	size_t n;

	ASSERT_EQ(ckpt_crypt_new(&c, UKEY, "job", 3), 0);
	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (unsigned char)(i * 7);
	memcpy(buf, plain, sizeof(plain));
	ASSERT_EQ(ckpt_crypt_part(&c, 1, 5, buf, sizeof(plain), &n), 0);
	ASSERT_EQ(n, sizeof(plain) + CKPT_TAG_LEN);
	ASSERT_TRUE(memcmp(buf, plain, sizeof(plain)) != 0);
	for (size_t at = 0; at < n; at += 37) {
		unsigned char t[sizeof(buf)];
		memcpy(t, buf, n);
		t[at] ^= 4;
		ASSERT_NE(ckpt_crypt_part(&c, 0, 5, t, n, &n), 0);
		n = sizeof(plain) + CKPT_TAG_LEN;
	}
	{
		unsigned char t[sizeof(buf)];
		memcpy(t, buf, n);
		ASSERT_NE(ckpt_crypt_part(&c, 0, 6, t, n, &n), 0);	/* another part's place */
		n = sizeof(plain) + CKPT_TAG_LEN;
	}
	ASSERT_EQ(ckpt_crypt_part(&c, 0, 5, buf, n, &n), 0);
	ASSERT_EQ(n, sizeof(plain));
	ASSERT_TRUE(memcmp(buf, plain, sizeof(plain)) == 0);
}

static void nonces_unique(void)
{
	struct ckpt_crypt a, b;
	unsigned char n1[CKPT_NONCE_LEN], n2[CKPT_NONCE_LEN];

	ASSERT_EQ(ckpt_crypt_new(&a, UKEY, "job", 1), 0);
	ASSERT_EQ(ckpt_crypt_new(&b, UKEY, "job", 1), 0);
	ASSERT_TRUE(memcmp(a.dkey, b.dkey, CKPT_KEY_LEN) != 0);	/* a fresh data key per checkpoint */
	ASSERT_TRUE(memcmp(a.wrap_nonce, b.wrap_nonce, CKPT_NONCE_LEN) != 0);
	for (uint64_t i = 0; i < 1000; i++) {
		ckpt_crypt_nonce(&a, i, n1);
		ckpt_crypt_nonce(&a, i + 1, n2);
		ASSERT_TRUE(memcmp(n1, n2, CKPT_NONCE_LEN) != 0);
		ASSERT_TRUE(memcmp(n1, a.prefix, 4) == 0);
	}
	ckpt_crypt_nonce(&a, 1ull << 40, n1);
	ckpt_crypt_nonce(&a, 0, n2);
	ASSERT_TRUE(memcmp(n1, n2, CKPT_NONCE_LEN) != 0);
}

static void unwrap_needs_key_job_and_seq(void)
{
	struct ckpt_crypt c, d;
	unsigned char other[CKPT_KEY_LEN];

	memcpy(other, UKEY, CKPT_KEY_LEN);
	other[0] ^= 1;
	ASSERT_EQ(ckpt_crypt_new(&c, UKEY, "job", 9), 0);
	d = c;
	memset(d.dkey, 0, CKPT_KEY_LEN);
	d.have_key = 0;
	ASSERT_EQ(ckpt_crypt_unwrap(&d, other, "job", 9), EX_DATAERR);
	ASSERT_EQ(ckpt_crypt_unwrap(&d, UKEY, "job", 8), EX_DATAERR);
	ASSERT_EQ(ckpt_crypt_unwrap(&d, UKEY, "jab", 9), EX_DATAERR);
	ASSERT_EQ(ckpt_crypt_unwrap(&d, UKEY, "job", 9), 0);
	ASSERT_TRUE(memcmp(d.dkey, c.dkey, CKPT_KEY_LEN) == 0);
}

static void mac_covers_every_byte(void)
{
	struct ckpt_crypt c;
	char text[] = "{\"format\": 2, \"job\": \"x\"}";
	unsigned char m1[32], m2[32];

	ASSERT_EQ(ckpt_crypt_new(&c, UKEY, "x", 1), 0);
	ASSERT_EQ(ckpt_crypt_mac(&c, text, strlen(text), m1), 0);
	for (size_t i = 0; i < strlen(text); i++) {
		text[i] ^= 1;
		ASSERT_EQ(ckpt_crypt_mac(&c, text, strlen(text), m2), 0);
		ASSERT_TRUE(memcmp(m1, m2, 32) != 0);
		text[i] ^= 1;
	}
	ASSERT_EQ(ckpt_crypt_mac(&c, text, strlen(text), m2), 0);
	ASSERT_TRUE(memcmp(m1, m2, 32) == 0);
}

static void key_files(void)
{
	char path[] = "/tmp/test_crypt.XXXXXX";
	unsigned char k[CKPT_KEY_LEN];
	int fd = mkstemp(path);

	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(write(fd, UKEY, CKPT_KEY_LEN), CKPT_KEY_LEN);
	close(fd);
	ASSERT_EQ(ckpt_key_load(path, k), 0);
	ASSERT_TRUE(memcmp(k, UKEY, CKPT_KEY_LEN) == 0);
	fd = open(path, O_WRONLY | O_TRUNC);
	ASSERT_EQ(write(fd, "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF\n", 65), 65);
	close(fd);
	ASSERT_EQ(ckpt_key_load(path, k), 0);
	ASSERT_EQ(k[1], 0x11);
	ASSERT_EQ(k[31], 0xff);
	fd = open(path, O_WRONLY | O_TRUNC);
	ASSERT_EQ(write(fd, "short", 5), 5);
	close(fd);
	ASSERT_EQ(ckpt_key_load(path, k), EX_USAGE);
	unlink(path);
	ASSERT_EQ(ckpt_key_load(path, k), EX_NOINPUT);
}

CHECK_MAIN("crypt", CHECK_CASE(part_round_trip_and_tamper), CHECK_CASE(nonces_unique),
	   CHECK_CASE(unwrap_needs_key_job_and_seq), CHECK_CASE(mac_covers_every_byte), CHECK_CASE(key_files))
