/*
 * test_prov_parse.c - table tests of the provider payload parsers
 * (providers/parse.c): the documented payloads of PROVIDERS.md as served
 * from tests/fixtures/metadata, their whitespace variants, times in both
 * formats, and the garbage that must be rejected without a crash.
 */
#include "check.h"

#include <math.h>

#include "prov_int.h"

#define LEN(s) s, strlen(s)

static void test_iso8601(void)
{
	double t;
	ASSERT_EQ(prov_parse_iso8601(LEN("2017-09-18T08:22:00Z"), &t), 0);
	ASSERT_NEAR(t, 1505722920.0, 0.001);
	ASSERT_EQ(prov_parse_iso8601(LEN("  2015-01-05T18:02:00Z\n"), &t), 0);
	ASSERT_NEAR(t, 1420480920.0, 0.001);
	ASSERT_EQ(prov_parse_iso8601(LEN("2020-04-24T17:11:44.250Z"), &t), 0);
	ASSERT_NEAR(t, 1587748304.25, 0.001);
	ASSERT_EQ(prov_parse_iso8601(LEN("none"), &t), -1);
	ASSERT_EQ(prov_parse_iso8601(LEN(""), &t), -1);
	ASSERT_EQ(prov_parse_iso8601(LEN("2017-09-18T08:22:00"), &t), -1);
	ASSERT_EQ(prov_parse_iso8601(LEN("2017-13-18T08:22:00Z"), &t), -1);
	ASSERT_EQ(prov_parse_iso8601(LEN("2017-09-18 08:22:00Z"), &t), -1);
	ASSERT_EQ(prov_parse_iso8601(LEN("2017-09-18T08:22:00Zjunk"), &t), -1);
	ASSERT_EQ(prov_parse_iso8601("2017-09-18T08:22:00Z", 10, &t), -1); /* not NUL-terminated */
}

static void test_rfc1123(void)
{
	double t;
	ASSERT_EQ(prov_parse_rfc1123(LEN("Mon, 11 Apr 2022 22:26:58 GMT"), &t), 0);
	ASSERT_NEAR(t, 1649716018.0, 0.001);
	ASSERT_EQ(prov_parse_rfc1123(LEN("Mon, 19 Sep 2016 18:29:47 GMT"), &t), 0);
	ASSERT_NEAR(t, 1474309787.0, 0.001);
	ASSERT_EQ(prov_parse_rfc1123(LEN("21 Jan 2019 09:00:43 GMT"), &t), 0);
	ASSERT_NEAR(t, 1548061243.0, 0.001);
	ASSERT_EQ(prov_parse_rfc1123(LEN("Mon, 1 Apr 2022 00:00:00 GMT"), &t), 0);
	ASSERT_EQ(prov_parse_rfc1123(LEN(""), &t), -1);
	ASSERT_EQ(prov_parse_rfc1123(LEN("Mon, 11 Foo 2022 22:26:58 GMT"), &t), -1);
	ASSERT_EQ(prov_parse_rfc1123(LEN("Mon, 11 Apr 2022 22:26:58"), &t), -1);
	ASSERT_EQ(prov_parse_rfc1123(LEN("Mon,"), &t), -1);
}

static void test_aws_action(void)
{
	enum prov_kind k;
	double d;
	ASSERT_EQ(prov_aws_parse_action(LEN("{\"action\": \"terminate\", \"time\": \"2017-09-18T08:22:00Z\"}"),
					100, &k, &d), 1);
	ASSERT_EQ(k, PROV_TERMINATE);
	ASSERT_NEAR(d, 1505722920.0, 0.001);
	ASSERT_EQ(prov_aws_parse_action(LEN("{\"action\": \"stop\", \"time\": \"2017-09-18T08:22:00Z\"}"),
					100, &k, &d), 1);
	ASSERT_EQ(k, PROV_PREEMPT);
	/* AEMM's pretty-printed form, with tabs */
	ASSERT_EQ(prov_aws_parse_action(LEN("{\n\t\"action\": \"terminate\",\n\t\"time\": \"2020-04-24T17:11:44Z\"\n}"),
					100, &k, &d), 1);
	ASSERT_NEAR(d, 1587748304.0, 0.001);
	ASSERT_EQ(prov_aws_parse_action(LEN("{\"action\": \"hibernate\", \"time\": \"2017-09-18T08:22:00Z\"}"),
					100, &k, &d), 1);
	ASSERT_EQ(k, PROV_PREEMPT);
	ASSERT_NEAR(d, 100, 0.001); /* hibernation begins at once */
	ASSERT_EQ(prov_aws_parse_action(LEN("{\"action\": \"terminate\"}"), 100, &k, &d), 1);
	ASSERT_NEAR(d, 100 + PROV_AWS_LEAD, 0.001);
	ASSERT_EQ(prov_aws_parse_action(LEN("<html>"), 100, &k, &d), -1);
	ASSERT_EQ(k, PROV_TERMINATE);
	ASSERT_NEAR(d, 100 + PROV_AWS_LEAD, 0.001);
}

static void test_aws_rebalance_and_termtime(void)
{
	double t;
	ASSERT_EQ(prov_aws_parse_rebalance(LEN("{\"noticeTime\": \"2020-10-27T08:22:00Z\"}"), &t), 1);
	ASSERT_NEAR(t, 1603786920.0, 0.001);
	ASSERT_EQ(prov_aws_parse_rebalance(LEN("{\n        \"noticeTime\": \"2020-10-16T19:18:24Z\"\n}"), &t), 1);
	ASSERT_EQ(prov_aws_parse_rebalance(LEN("{}"), &t), 0);
	ASSERT_EQ(prov_aws_parse_rebalance(LEN("[1]"), &t), 0);
	ASSERT_EQ(prov_parse_termination_time(LEN("2015-01-05T18:02:00Z"), &t), 1);
	ASSERT_EQ(prov_parse_termination_time(LEN("2018-04-07T17:03:00Z\n"), &t), 1);
	ASSERT_EQ(prov_parse_termination_time(LEN(""), &t), 0);
	ASSERT_EQ(prov_parse_termination_time(LEN("none"), &t), 0);
}

static void test_gcp(void)
{
	char out[64];
	ASSERT_EQ(prov_gcp_parse_bool(LEN("TRUE")), 1);
	ASSERT_EQ(prov_gcp_parse_bool(LEN("TRUE\n")), 1);
	ASSERT_EQ(prov_gcp_parse_bool(LEN("FALSE")), 0);
	ASSERT_EQ(prov_gcp_parse_bool(LEN("true")), -1);
	ASSERT_EQ(prov_gcp_parse_bool(LEN("")), -1);
	ASSERT_EQ(prov_gcp_parse_maintenance(LEN("TERMINATE_ON_HOST_MAINTENANCE")), 1);
	ASSERT_EQ(prov_gcp_parse_maintenance(LEN("MIGRATE_ON_HOST_MAINTENANCE")), 0);
	ASSERT_EQ(prov_gcp_parse_maintenance(LEN("NONE")), 0);
	prov_last_segment(LEN("projects/379343634745/machineTypes/n1-standard-1"), out, sizeof(out));
	ASSERT_STR_EQ(out, "n1-standard-1");
	prov_last_segment(LEN("projects/379343634745/zones/us-central1-a\n"), out, sizeof(out));
	ASSERT_STR_EQ(out, "us-central1-a");
	prov_region_from_zone("us-central1-a", out, sizeof(out));
	ASSERT_STR_EQ(out, "us-central1");
	prov_region_from_zone("us-south-1", out, sizeof(out));
	ASSERT_STR_EQ(out, "us-south");
	prov_region_from_zone("nodash", out, sizeof(out));
	ASSERT_STR_EQ(out, "nodash");
	prov_last_segment(LEN("a/"), out, sizeof(out));
	ASSERT_STR_EQ(out, "");
}

static const char az_doc[] =
	"{\n    \"DocumentIncarnation\":  2,\n    \"Events\":  [\n {\n"
	"  \"EventId\":  \"C7061BAC-AFDC-4513-B24B-AA5F13A16123\",\n  \"EventStatus\":  \"Scheduled\",\n"
	"  \"EventType\":  \"%s\",\n  \"ResourceType\":  \"VirtualMachine\",\n"
	"  \"Resources\":  [\"WestNO_0\", \"WestNO_1\"],\n"
	"  \"NotBefore\":  \"%s\",\n  \"DurationInSeconds\":  -1\n }\n ]\n}\n";

static int az_parse(const char *type, const char *nb, const char *vm, unsigned mask,
		    struct prov_azure_event *ev, long long *inc)
{
	char doc[1024];
	snprintf(doc, sizeof(doc), az_doc, type, nb);
	return prov_azure_parse_events(doc, strlen(doc), vm, mask, 50, inc, ev, 4);
}

static void test_azure_events(void)
{
	unsigned def = PROV_ACT_PREEMPT | PROV_ACT_TERMINATE;
	struct prov_azure_event ev[4];
	long long inc = 0;

	ASSERT_EQ(az_parse("Preempt", "Mon, 11 Apr 2022 22:26:58 GMT", "WestNO_0", def, ev, &inc), 1);
	ASSERT_EQ(inc, 2);
	ASSERT_EQ(ev[0].kind, PROV_PREEMPT);
	ASSERT_STR_EQ(ev[0].id, "C7061BAC-AFDC-4513-B24B-AA5F13A16123");
	ASSERT_NEAR(ev[0].deadline, 1649716018.0, 0.001);
	ASSERT_EQ(az_parse("Terminate", "", "westno_1", def, ev, &inc), 1); /* names: any case */
	ASSERT_EQ(ev[0].kind, PROV_TERMINATE);
	ASSERT_NEAR(ev[0].deadline, 50, 0.001); /* started: NotBefore blank */
	ASSERT_EQ(az_parse("Preempt", "garbage", "WestNO_0", def, ev, &inc), 1);
	ASSERT_NEAR(ev[0].deadline, 50 + PROV_AZURE_LEAD, 0.001);
	ASSERT_EQ(az_parse("Preempt", "", "WestNO_7", def, ev, &inc), 0);	/* another VM */
	ASSERT_EQ(az_parse("Preempt", "", "", def, ev, &inc), 0);		/* name unknown */
	ASSERT_EQ(az_parse("Freeze", "", "WestNO_0", def, ev, &inc), 0);	/* not acted on */
	ASSERT_EQ(az_parse("Freeze", "", "WestNO_0", def | PROV_ACT_FREEZE, ev, &inc), 1);
	ASSERT_EQ(ev[0].kind, PROV_MAINTENANCE);
	ASSERT_EQ(prov_azure_parse_events(LEN("{\"DocumentIncarnation\": 1, \"Events\": []}"), "x", def,
					  0, &inc, ev, 4), 0);
	ASSERT_EQ(inc, 1);
	ASSERT_EQ(prov_azure_parse_events(LEN("{\"Events\": []}"), "x", def, 0, &inc, ev, 4), -1);
	ASSERT_EQ(prov_azure_parse_events(LEN("nope"), "x", def, 0, &inc, ev, 4), -1);
}

static void test_azure_act_on_and_ack(void)
{
	struct prov_azure_event ev[2] = { { .id = "a-1" }, { .id = "b\"2" } };
	unsigned m;
	char *s;

	ASSERT_EQ(prov_azure_parse_act_on("Preempt,Terminate", &m), 0);
	ASSERT_EQ(m, PROV_ACT_PREEMPT | PROV_ACT_TERMINATE);
	ASSERT_EQ(prov_azure_parse_act_on("freeze, Reboot,Redeploy", &m), 0);
	ASSERT_EQ(m, PROV_ACT_FREEZE | PROV_ACT_REBOOT | PROV_ACT_REDEPLOY);
	ASSERT_EQ(prov_azure_parse_act_on("Preempt,Explode", &m), -1);
	ASSERT_EQ(prov_azure_parse_act_on("", &m), -1);
	s = prov_azure_ack_body(ev, 2);
	ASSERT_STR_EQ(s, "{\"StartRequests\":[{\"EventId\":\"a-1\"},{\"EventId\":\"b\\\"2\"}]}");
	free(s);
}

static void test_identity_payloads(void)
{
	struct prov_identity id;
	char name[64], tok[64];

	memset(&id, 0, sizeof(id));
	ASSERT_EQ(prov_azure_parse_compute(LEN("{\"location\":\"westeurope\",\"name\":\"vm1\",\"priority\":\"Regular\","
					       "\"vmId\":\"42\",\"vmSize\":\"Standard_NC6\",\"zone\":\"\"}"),
					   &id, name, sizeof(name)), 0);
	ASSERT_STR_EQ(id.region, "westeurope");
	ASSERT_STR_EQ(id.lifecycle, "on-demand");
	ASSERT_STR_EQ(name, "vm1");
	ASSERT_EQ(prov_azure_parse_compute(LEN("{\"vmId\": 5, \"priority\": \"Spot\"}"), &id, name, sizeof(name)), 0);
	ASSERT_STR_EQ(id.lifecycle, "spot");
	ASSERT_STR_EQ(id.instance_id, "");
	ASSERT_EQ(prov_azure_parse_compute(LEN("{}"), &id, name, sizeof(name)), -1);
	memset(&id, 0, sizeof(id));
	ASSERT_EQ(prov_oci_parse_instance(LEN("{\"shape\":\"VM.GPU.A10.1\",\"region\":\"phx\",\"id\":\"ocid1\"}"), &id), 0);
	ASSERT_STR_EQ(id.region, "phx");
	ASSERT_STR_EQ(id.instance_type, "VM.GPU.A10.1");
	ASSERT_EQ(prov_oci_parse_instance(LEN("[]"), &id), -1);
	ASSERT_EQ(prov_ibm_parse_token(LEN("{\"access_token\":\"abc\"}"), tok, sizeof(tok)), 0);
	ASSERT_STR_EQ(tok, "abc");
	ASSERT_EQ(prov_ibm_parse_token(LEN("{\"access_token\":\"a\\nb\"}"), tok, sizeof(tok)), -1);
	ASSERT_EQ(prov_ibm_parse_token(LEN("{}"), tok, sizeof(tok)), -1);
	memset(&id, 0, sizeof(id));
	ASSERT_EQ(prov_ibm_parse_instance(LEN("{\"id\":\"0717\",\"profile\":{\"name\":\"bx2\"},\"zone\":{\"name\":\"eu-de-2\"},"
					      "\"availability\":{\"class\":\"standard\"}}"), &id), 0);
	ASSERT_STR_EQ(id.region, "eu-de");
	ASSERT_STR_EQ(id.instance_type, "bx2");
	ASSERT_STR_EQ(id.lifecycle, "on-demand");
}

static void test_copy_trim(void)
{
	char out[8];
	prov_copy_trim(out, sizeof(out), LEN("  abcdefghij  "));
	ASSERT_STR_EQ(out, "abcdefg");
	prov_copy_trim(out, sizeof(out), LEN("a\x01" "b"));
	ASSERT_STR_EQ(out, "a?b");
}

static void test_notice_json_raw_text(void)
{
	struct prov_notice n;
	struct prov_identity id = { .provider = "aws", .scheduler = "slurm" };
	char *s;

	prov_notice_make(&n, "aws", PROV_TERMINATE, 120);
	n.raw = strdup("{\"action\": \"terminate\",\t\"time\": \"2017-09-18T08:22:00Z\"}");
	s = prov_notice_json_line(&n, &id);
	ASSERT_TRUE(s && !strchr(s, '\n'));
	ASSERT_TRUE(strstr(s, "\"raw_text\":\"{\\\"action\\\": \\\"terminate\\\",\\t\\\"time\\\""));
	ASSERT_TRUE(strstr(s, "\"scheduler\":\"slurm\""));
	free(s);
	prov_notice_clear(&n);
}

CHECK_MAIN("prov_parse", CHECK_CASE(test_iso8601), CHECK_CASE(test_rfc1123),
	   CHECK_CASE(test_aws_action), CHECK_CASE(test_aws_rebalance_and_termtime),
	   CHECK_CASE(test_gcp), CHECK_CASE(test_azure_events), CHECK_CASE(test_azure_act_on_and_ack),
	   CHECK_CASE(test_identity_payloads), CHECK_CASE(test_copy_trim),
	   CHECK_CASE(test_notice_json_raw_text))
