/* s3_mpu_test.c - the ListMultipartUploads parser (s3_xml_uploads): entries, the
 * page token from the markers (or the last entry when a server leaves them out),
 * URL-decoding only when the document says so, and documents that must fail. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/s3_xml.h"
#include "tests/unit/check.h"

static int parse(const char *doc, struct lexfs_upload_page *pg)
{
	return s3_xml_uploads(doc, strlen(doc), pg);
}

static void test_entries(void)
{
	struct lexfs_upload_page pg;
	const char *doc =
	    "<?xml version=\"1.0\"?><ListMultipartUploadsResult xmlns=\"x\"><Bucket>b</Bucket>"
	    "<IsTruncated>false</IsTruncated>"
	    "<Upload><Key>a/one.bin</Key><UploadId>id-1</UploadId>"
	    "<Initiated>2026-01-02T03:04:05.678Z</Initiated></Upload>"
	    "<Upload><Key>p+q%r &amp; s.bin</Key><UploadId>id-2</UploadId></Upload>"
	    "<Upload><Key>no-id</Key></Upload>"
	    "</ListMultipartUploadsResult>";

	CHECK_INT(parse(doc, &pg), 0);
	CHECK_INT(pg.n, 2);
	CHECK(pg.next_token == NULL);
	if (pg.n == 2) {
		CHECK_STR(pg.items[0].key, "a/one.bin");
		CHECK_STR(pg.items[0].upload_id, "id-1");
		CHECK_INT(pg.items[0].initiated, 1767323045);
		/* Without <EncodingType>url, keys are text: '+' and '%' stay. */
		CHECK_STR(pg.items[1].key, "p+q%r & s.bin");
		CHECK_INT(pg.items[1].initiated, 0);
	}
	upload_page_free(&pg);
}

static void test_token(void)
{
	struct lexfs_upload_page pg;
	const char *marked =
	    "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
	    "<NextKeyMarker>k 1</NextKeyMarker><NextUploadIdMarker>u1</NextUploadIdMarker>"
	    "<Upload><Key>k 1</Key><UploadId>u1</UploadId></Upload>"
	    "</ListMultipartUploadsResult>";
	const char *unmarked = "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
			       "<Upload><Key>k\n2</Key><UploadId>u2</UploadId></Upload>"
			       "</ListMultipartUploadsResult>";
	const char *stuck = "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
			    "</ListMultipartUploadsResult>";
	const char *encoded =
	    "<ListMultipartUploadsResult><EncodingType>url</EncodingType>"
	    "<IsTruncated>true</IsTruncated><NextKeyMarker>c%20d%2F%C3%A9</NextKeyMarker>"
	    "<NextUploadIdMarker>u3</NextUploadIdMarker>"
	    "<Upload><Key>c%20d%2F%C3%A9</Key><UploadId>u3</UploadId></Upload>"
	    "</ListMultipartUploadsResult>";

	CHECK_INT(parse(marked, &pg), 0);
	CHECK_STR(pg.next_token, "u1\nk 1");
	upload_page_free(&pg);
	/* No markers: go on after the last entry (a key may hold a newline). */
	CHECK_INT(parse(unmarked, &pg), 0);
	CHECK_STR(pg.next_token, "u2\nk\n2");
	upload_page_free(&pg);
	/* Truncated with no way on: an error, not an endless loop. */
	CHECK_INT(parse(stuck, &pg), -EIO);
	CHECK_INT(pg.n, 0);
	CHECK_INT(parse(encoded, &pg), 0);
	CHECK_INT(pg.n, 1);
	if (pg.n == 1)
		CHECK_STR(pg.items[0].key, "c d/\xc3\xa9");
	CHECK_STR(pg.next_token, "u3\nc d/\xc3\xa9");
	upload_page_free(&pg);
}

static void test_bad_documents(void)
{
	struct lexfs_upload_page pg;

	CHECK_INT(parse("", &pg), -EIO);
	CHECK_INT(parse("<ListMultipartUploadsResult><Upload>", &pg), -EIO);
	CHECK_INT(parse("<ListBucketResult></ListBucketResult>", &pg), -EIO);
	CHECK_INT(parse("<Error><Code>AccessDenied</Code></Error>", &pg), -EIO);
	CHECK(pg.items == NULL && pg.n == 0 && pg.next_token == NULL);
}

int main(void)
{
	test_entries();
	test_token();
	test_bad_documents();
	return check_done("s3_mpu_test");
}
