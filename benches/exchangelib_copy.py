"""Benchmark 3: the one-way copy as an admin writes it today with exchangelib.

Reads every contact of the public folder, then bulk-creates a copy in each mailbox's Contacts
folder. Prints one JSON line: items copied, seconds, CPU seconds and peak RSS of this process.

    python exchangelib_copy.py ENDPOINT MAILBOX[,MAILBOX...]
"""

import json
import resource
import sys
import time

from exchangelib import BASIC, IMPERSONATION, Account, Configuration, Contact, Credentials, Version
from exchangelib.version import EXCHANGE_2016

ADMIN = "sync-admin@contoso.test"
PASSWORD = "exchange-sync"
FIELDS = (
    "given_name", "surname", "display_name", "file_as", "company_name", "department", "job_title",
    "email_addresses", "phone_numbers", "physical_addresses", "body", "categories",
)


def account(config, mailbox):
    return Account(mailbox, config=config, autodiscover=False, access_type=IMPERSONATION)


def main():
    endpoint, mailboxes = sys.argv[1], sys.argv[2].split(",")
    config = Configuration(
        service_endpoint=endpoint,
        credentials=Credentials(ADMIN, PASSWORD),
        auth_type=BASIC,
        version=Version(build=EXCHANGE_2016),
    )
    started = time.perf_counter()
    cpu = time.process_time()
    source = account(config, ADMIN).public_folders_root / "Company Contacts"
    contacts = list(source.all().only(*FIELDS))
    copied = 0
    for mailbox in mailboxes:
        target = account(config, mailbox)
        copies = [Contact(folder=target.contacts, **{f: getattr(c, f) for f in FIELDS}) for c in contacts]
        for result in target.bulk_create(folder=target.contacts, items=copies):
            if not isinstance(result, Exception):
                copied += 1
    print(json.dumps({
        "items": copied,
        "seconds": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
