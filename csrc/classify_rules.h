/*
 * classify_rules.h - the classifier's rules, as data. Included by classify.c
 * only. Adding a phrase is one line.
 *
 * How a reply is decided (classify.c; classification.md section 1.1):
 *   1. PHRASES: decisive text, provider rules first. The first line of this
 *      list found anywhere in the text wins (line order is priority, not the
 *      position in the text). They win over the enhanced code, because
 *      providers reuse codes with other meanings (Gmail 4.7.27 = SPF, GoDaddy
 *      5.1.1 = rate limit, Outlook 5.4.1 = unknown recipient).
 *   2. ENHANCED: the RFC 3463 code (and Microsoft's 3-digit details), unless
 *      its entry is GENERIC (X.0.0, X.7.1, ...).
 *   3. HINTS: weak phrases ("access denied", "try again later", "(in reply to
 *      MAIL FROM command)"), first line found wins.
 *   4. a GENERIC enhanced entry, then the reply code.
 * The outcome then follows from the reply's class and the reason (classify.c).
 *
 * Phrases are lowercase ASCII; matching ignores case. "a*b" means fragment a,
 * then fragment b later in the text. The first fragment needs three bytes at
 * least (the matcher's index is keyed by its first bytes; classify_spec
 * checks). Flags: RCPT marks a rate limit of the recipient (5xx: bounced,
 * not blocked).
 * Sources: each provider's public list of SMTP errors (Gmail
 * support.google.com/a/answer/3726730, Yahoo senders.yahooinc.com/smtp-error-codes,
 * Microsoft's Exchange Online NDR pages, Apple's iCloud postmaster page,
 * Comcast/Cox postmaster pages, Mimecast and Proofpoint support pages), the
 * seed's table, and the wording in shared/data/sisimai-diagnostics.tsv.
 */
#ifndef SMTPKIT_CLASSIFY_RULES_H
#define SMTPKIT_CLASSIFY_RULES_H

#include "classify.h"

typedef struct {
    const char *phrase;
    smtpkit_reason reason;
    unsigned flags;
} classify_phrase;

typedef struct {
    int subject, lo, hi;          /* X.subject.lo .. X.subject.hi */
    smtpkit_reason reason;
    unsigned flags;
    const char *label;
} classify_enhanced;

typedef struct {
    int lo, hi;                   /* reply codes lo..hi */
    smtpkit_reason reason;
    int action;                   /* -1, or an smtpkit_action that overrides */
    const char *explanation;      /* NULL, or one that overrides */
    const char *label;
} classify_code;

#define RCPT SMTPKIT_RULE_RCPT_SIDE
#define GENERIC SMTPKIT_RULE_GENERIC
#define P(phrase, reason, flags) { phrase, SMTPKIT_REASON_##reason, flags }

/* ---- 1. decisive phrases, in priority order --------------------------------- */
static const classify_phrase classify_phrases[] = {
    /* The seed's table (SendGrid "Errors and troubleshooting") */
    P("received this hour", RATE_LIMITED, 0),          /* 452 Too many recipients received this hour (throttled) */
    P("recipients this hour", RATE_LIMITED, 0),        /* GoDaddy IB607, sent as 550 5.1.1 */
    P("(throttled)", RATE_LIMITED, 0),
    P("repeated bad requests", RATE_LIMITED, 0),       /* 550 temporarily blocked ...: a block on the sender */
    P("too frequent connect", TOO_MANY_CONNECTIONS, 0),/* 450 too frequent connects from ... */
    P("temporary local problem", TEMPORARY_FAILURE, 0),/* 451 */
    P("invalid/inactive user", USER_UNKNOWN, 0),       /* 553 */
    P("delayed bounce - unable to parse", UNKNOWN, 0), /* SendGrid's own placeholder */
    P("spam reporting address", SUPPRESSED, 0),        /* SendGrid drop reason, before "spam" */

    /* Yahoo / AOL (senders.yahooinc.com/smtp-error-codes) */
    P("[tss04]", REPUTATION, 0),
    P("[tss09]", REPUTATION, 0),
    P("[tss11]", REPUTATION, 0),
    P("[ts01]", REPUTATION, 0),
    P("[ts02]", REPUTATION, 0),
    P("[ts03]", REPUTATION, 0),
    P("[bl21]", BLOCKLISTED, 0),
    P("[bl22]", BLOCKLISTED, 0),
    P("[bl23]", BLOCKLISTED, 0),
    P("[ph0", SPAM_CONTENT, 0),                       /* [PH01] content (phishing, malware links) */
    P("(554.30)", MAILBOX_DISABLED, 0),
    P("this mailbox is disabled", MAILBOX_DISABLED, 0),
    P("disabled or discontinued", MAILBOX_DISABLED, 0),
    P("doesn't have a*account", USER_UNKNOWN, 0),      /* This user doesn't have a yahoo.com account */
    P("max message per connection", TOO_MANY_CONNECTIONS, 0),
    P("unresolvable rfc.5321 from domain", SENDER_REJECTED, 0),
    P("will not accept delivery of this message", POLICY, 0),

    /* GMX / web.de / 1&1: "mailbox unavailable" can be a policy block */
    P("reject due to policy restrictions", POLICY, 0),
    P("policy restrictions", POLICY, 0),

    /* Gmail / Google Workspace (support.google.com/a/answer/3726730) */
    P("receiving mail at a rate", RATE_LIMITED, RCPT), /* 450/550 4.2.1/5.2.1, ReceivingRatePerm */
    P("receiving mail too quickly", RATE_LIMITED, RCPT),
    P("peak smtp relay limit", RATE_LIMITED, 0),
    P("daily sending quota", RATE_LIMITED, 0),
    P("daily smtp relay limit", RATE_LIMITED, 0),
    P("relay limit exceeded", RATE_LIMITED, 0),
    P("email quota exceeded", RATE_LIMITED, 0),
    P("account that you tried to reach is disabled", MAILBOX_DISABLED, 0),
    P("account that you tried to reach is inactive", MAILBOX_DISABLED, 0),
    P("account that you tried to reach does not exist", USER_UNKNOWN, 0),
    P("tried to reach is over quota", MAILBOX_FULL, 0),
    P("out of storage space", MAILBOX_FULL, 0),
    P("multiple destination domains per transaction", TOO_MANY_RECIPIENTS, 0),
    P("domain policy size per transaction", TOO_MANY_RECIPIENTS, 0),
    P("unusual rate of unsolicited mail", REPUTATION, 0),
    P("unusual rate of mail", REPUTATION, 0),
    P("unusual rate of email", REPUTATION, 0),         /* 4.7.28 */
    P("unusual rate of unsolicited", REPUTATION, 0),   /* 4.7.28, before "dkim"/"spf" in its text */
    P("unusual amount of unsolicited", REPUTATION, 0), /* 4.7.28 */
    P("not using a tls connection", TLS_REQUIRED, 0),  /* 4.7.29, before "rate limited" */
    P("low reputation", REPUTATION, 0),
    P("likely unsolicited", SPAM_CONTENT, 0),           /* ... mail / ... email */
    P("not rfc 5322 compliant", MESSAGE_INVALID, 0),
    P("multiple addresses in*from", MESSAGE_INVALID, 0), /* in the From: header */
    P("messages missing a valid", MESSAGE_INVALID, 0), /* ... Message-ID:/From: header */
    P("encoded-word syntax", MESSAGE_INVALID, 0),     /* before "spam" in its text */
    P("unicode character in a disallowed header", MESSAGE_INVALID, 0),
    P("recipient address*not a valid rfc", INVALID_ADDRESS, 0), /* 553 5.1.2 <.@gmail.com> */
    P("empty helo", PROTOCOL_ERROR, 0),               /* 501 5.5.4 Empty HELO/EHLO argument */
    P("message is malformed", MESSAGE_INVALID, 0),
    P("exceeded google's message size", MESSAGE_TOO_LARGE, 0),
    P("content presents a potential security issue", VIRUS_DETECTED, 0),
    P("wasn't sent over a tls connection", TLS_REQUIRED, 0),
    P("tls required for rcpt domain", TLS_REQUIRED, 0),
    P("ip not in whitelist", POLICY, 0),
    P("not authorized to send email directly to our servers", POLICY, 0),
    P("policy that prohibited the mail", POLICY, 0),
    P("application-specific password required", AUTH_REQUIRED, 0),
    P("username and password not accepted", AUTH_REQUIRED, 0),
    P("log in with your web browser", AUTH_REQUIRED, 0),
    P("invalid credentials for relay", AUTH_REQUIRED, 0),
    P("mail relay denied", RELAY_DENIED, 0),
    P("mail sending denied", POLICY, 0),
    P("no identity changes permitted", PROTOCOL_ERROR, 0),
    P("starttls may not be repeated", PROTOCOL_ERROR, 0),
    P("no commands allowed to pipeline after starttls", PROTOCOL_ERROR, 0),
    P("rejected due to spam classification", SPAM_CONTENT, 0),   /* Google Groups */
    P("permission to post", POLICY, 0),                          /* Google Groups */

    /* Microsoft: Outlook.com, Exchange Online */
    P("banned sending ip", BLOCKLISTED, 0),            /* 5.7.606-649 */
    P("banned sender", BLOCKLISTED, 0),                /* 5.7.511 (inside the 5.7.5xx throttling range) */
    P("(s3140)", BLOCKLISTED, 0),
    P("(s3150)", BLOCKLISTED, 0),
    P("(s3113)", BLOCKLISTED, 0),
    P("(s3114)", BLOCKLISTED, 0),
    P("(s3115)", BLOCKLISTED, 0),
    P("on our block list", BLOCKLISTED, 0),
    P("does not relay dynamically-assigned ip", POLICY, 0),
    P("from dynamic ip", POLICY, 0),                   /* DY-001: before "unfortunately, messages from" */
    P("unfortunately, messages from", BLOCKLISTED, 0), /* SC-001/SC-004/OU-001 ... weren't sent */
    P("(s77714)", RATE_LIMITED, 0),                    /* 4.7.500 Server busy */
    P("server busy. please try again later from", RATE_LIMITED, 0), /* 4.7.500 with any S-code */
    P("messages they can receive", RATE_LIMITED, RCPT),/* 5.2.122 */
    P("messages they can send", RATE_LIMITED, 0),      /* 5.2.121 */
    P("limits for how many messages", RATE_LIMITED, 0),/* RP-001/RP-002 */
    P("queue quota exceeded", RATE_LIMITED, RCPT),     /* 4.7.3 Organization queue quota exceeded */
    P("message expired, connection", NETWORK_ERROR, 0),/* 5.4.316-318: the cause, not the expiry */
    P("rate limited due to ip reputation", REPUTATION, 0), /* 4.7.650/651 */
    P("traffic not accepted from this ip", REPUTATION, 0),
    P("tenant has exceeded threshold", REPUTATION, 0),
    P("recipientnotfound", USER_UNKNOWN, 0),           /* RESOLVER.ADR.RecipientNotFound */
    P("recipnotfound", USER_UNKNOWN, 0),
    P("recipient not found", USER_UNKNOWN, 0),
    P("recipient address rejected: access denied", USER_UNKNOWN, 0), /* 5.4.1, DBEB */
    P("recipient addresses rejected : access denied", USER_UNKNOWN, 0),
    P("not authenticated for", POLICY, 0),             /* SenderNotAuthenticatedForGroup */
    P("notauthenticatedfor", POLICY, 0),
    P("rst.authrequired", POLICY, 0),                  /* RESOLVER.RST.AuthRequired: a group restriction */
    P("rules.rejectmessage", POLICY, 0),
    P("does not allow external forwarding", POLICY, 0),
    P("barelinefeedsareillegal", MESSAGE_INVALID, 0),
    P("dns query failed", NETWORK_ERROR, 0),           /* 5.4.312 Message expired, DNS query failed */
    P("not authenticated to send anonymous mail", AUTH_REQUIRED, 0),
    P("quotaexceeded", MAILBOX_FULL, 0),               /* MapiExceptionShutoffQuotaExceeded */

    /* Apple iCloud */
    P("[cs01]", POLICY, 0),
    P("[cs02]", POLICY, 0),
    P("[hm07]", POLICY, 0),
    P("[hm08]", POLICY, 0),
    P("inactive email address", USER_UNKNOWN, 0),
    P("excessive volume", RATE_LIMITED, 0),            /* iCloud 421 4.7.1 Messages to ... deferred due to excessive volume */

    /* Comcast, Cox, Charter/Spectrum */
    P("must have a ptr record", REVERSE_DNS, 0),       /* sent with BL000000 */
    P("bl000", BLOCKLISTED, 0),                        /* BL000000, BL000001, BL000010 */
    P("rp000", REPUTATION, 0),
    P("cxbl", BLOCKLISTED, 0),                         /* Cox AUP#CXBL */
    P("cdrbl", BLOCKLISTED, 0),                        /* Cox AUP#CDRBL */
    P("aup#cxcnct", TOO_MANY_CONNECTIONS, 0),
    P("aup#cxmxrt", RATE_LIMITED, 0),
    P("aup#cxrcpt", TOO_MANY_RECIPIENTS, 0),
    P("not our customer", USER_UNKNOWN, 0),
    P("quota violation", MAILBOX_FULL, 0),             /* 552 5.1.1 ... extended quota violation */
    P("boite du destinataire pleine", MAILBOX_FULL, 0),/* Orange OFR_417, sent as 552 5.1.1 */

    /* Mimecast, Proofpoint, Barracuda, Symantec */
    P("internal resource temporarily unavailable", GREYLISTED, 0), /* Mimecast greylisting */
    P("anti-spoofing", POLICY, 0),
    P("envelope blocked", POLICY, 0),
    P("administrative prohibition", POLICY, 0),
    P("mcspamsignature", SPAM_CONTENT, 0),
    P("rejected due to security policies", POLICY, 0),
    P("ct ip reputation", REPUTATION, 0),
    P("ipcheck.proofpoint", BLOCKLISTED, 0),
    P("dnsbl-lookup", BLOCKLISTED, 0),
    P("spoofed message", POLICY, 0),                   /* Barracuda anti-spoofing */
    P("banned content", SPAM_CONTENT, 0),              /* Barracuda */
    P("policy rejection", POLICY, 0),                  /* before the "recipient address rejected" hint */
    P("as a relay", RELAY_DENIED, 0),                  /* Symantec: ... use me [...] as a relay */
    P("block-send", POLICY, 0),                        /* Trend Micro BLOCK-SEND-ER */
    P("rejected: inactive", MAILBOX_DISABLED, 0),      /* Rambler 540 */

    /* La Poste, Orange (LPN/OFR codes) */
    P("service refuse", POLICY, 0),

    /* Tencent QQ, GoDaddy */
    P("mailbox unavailable or access denied", RATE_LIMITED, RCPT),
    P("frequency limited", RATE_LIMITED, 0),
    P("ib607", RATE_LIMITED, 0),

    /* Content blocklists name URLs in the message, not the sender */
    P("sender address [*blocked using", BLOCKLISTED, 0), /* Postfix rhsbl_sender: the sender domain */
    P("helo command [*blocked using", BLOCKLISTED, 0),   /* Postfix rhsbl_helo */
    P("spamhaus dbl", SPAM_CONTENT, 0),                /* iCloud: a domain present in the DBL */
    P("blacklisted url", SPAM_CONTENT, 0),
    P("uribl", SPAM_CONTENT, 0),
    P("surbl", SPAM_CONTENT, 0),
    P("dbl.spamhaus", SPAM_CONTENT, 0),

    /* Named blocklists (DNSBL/RBL) */
    P("spamhaus", BLOCKLISTED, 0),
    P("spamcop", BLOCKLISTED, 0),
    P("barracuda", BLOCKLISTED, 0),
    P("sorbs", BLOCKLISTED, 0),
    P("uceprotect", BLOCKLISTED, 0),
    P("cloudmark", BLOCKLISTED, 0),
    P("abuseat", BLOCKLISTED, 0),
    P("spamrats", BLOCKLISTED, 0),
    P("psbl", BLOCKLISTED, 0),
    P("mailspike", BLOCKLISTED, 0),
    P("invaluement", BLOCKLISTED, 0),
    P("dnsbl", BLOCKLISTED, 0),
    P("rbl", BLOCKLISTED, 0),
    P("blocked using", BLOCKLISTED, 0),
    P("not listed in", USER_UNKNOWN, 0),               /* Domino: User not listed in ... Directory */
    P("address that has been blacklisted", SENDER_REJECTED, 0),
    P("blacklisted", BLOCKLISTED, 0),
    P("blocklisted", BLOCKLISTED, 0),
    P("blacklist", BLOCKLISTED, 0),
    P("blocklist", BLOCKLISTED, 0),
    P("block list", BLOCKLISTED, 0),
    P("denylist", BLOCKLISTED, 0),
    P("listed in", BLOCKLISTED, 0),
    P("listed on", BLOCKLISTED, 0),
    P("blocked for spam", BLOCKLISTED, 0),

    /* Recipient-side conditions that must beat the generic phrases below */
    P("mailbox full", MAILBOX_FULL, 0),
    P("mailbox is full", MAILBOX_FULL, 0),
    P("over quota", MAILBOX_FULL, 0),
    P("overquota", MAILBOX_FULL, 0),
    P("mailbox size limit", MAILBOX_FULL, 0),          /* before "size limit" */
    P("quota exceeded", MAILBOX_FULL, 0),
    P("exceeded storage", MAILBOX_FULL, 0),
    P("storage allocation", MAILBOX_FULL, 0),
    P("disk quota", MAILBOX_FULL, 0),
    P("not enough disk space", MAILBOX_FULL, 0),
    P("mailfolder is full", MAILBOX_FULL, 0),
    P("mailbox exceeds", MAILBOX_FULL, 0),
    P("exceeds allowed size", MAILBOX_FULL, 0),
    P("messages in recipient's mailbox exceeded", MAILBOX_FULL, 0),
    P("insufficient space", MAILBOX_FULL, 0),
    P("full mailbox", MAILBOX_FULL, 0),

    /* Authentication of the message: SPF, DKIM, DMARC, ARC */
    P("unauthenticated email", AUTH_FAILED, 0),
    P("sender is unauthenticated", AUTH_FAILED, 0),
    P("is unauthenticated", AUTH_FAILED, 0),
    P("authentication checks", AUTH_FAILED, 0),
    P("does not have authentication information", AUTH_FAILED, 0),
    P("isn't aligned with", AUTH_FAILED, 0),
    P("dmarc", AUTH_FAILED, 0),
    P("dkim", AUTH_FAILED, 0),
    P("spf", AUTH_FAILED, 0),
    P("sender policy framework", AUTH_FAILED, 0),
    P("arc validation", AUTH_FAILED, 0),
    P("required authentication level", AUTH_FAILED, 0),

    /* Reverse DNS of the sending IP */
    P("ptr record", REVERSE_DNS, 0),
    P("ptr resource record", REVERSE_DNS, 0),
    P("reverse dns", REVERSE_DNS, 0),
    P("reverse hostname", REVERSE_DNS, 0),
    P("reverse lookup", REVERSE_DNS, 0),
    P("rdns", REVERSE_DNS, 0),
    P("ip name lookup failed", REVERSE_DNS, 0),
    P("cannot find your hostname", REVERSE_DNS, 0),
    P("unverifyable sending ip", REVERSE_DNS, 0),
    P("mismatches client ip", REVERSE_DNS, 0),

    /* Rate limits, connections, recipients per transaction */
    P("too many connections", TOO_MANY_CONNECTIONS, 0),
    P("too many concurrent", TOO_MANY_CONNECTIONS, 0),
    P("number of concurrent", TOO_MANY_CONNECTIONS, 0),
    P("too many sessions", TOO_MANY_CONNECTIONS, 0),
    P("connection rate", TOO_MANY_CONNECTIONS, 0),
    P("connection limit", TOO_MANY_CONNECTIONS, 0),
    P("too many simultaneous", TOO_MANY_CONNECTIONS, 0),
    P("messages per connection", TOO_MANY_CONNECTIONS, 0),
    P("temporarily deferred", RATE_LIMITED, 0),        /* seed 421 */
    P("temporarily rate limited", RATE_LIMITED, 0),
    P("rate limit", RATE_LIMITED, 0),
    P("rate-limit", RATE_LIMITED, 0),
    P("ratelimit", RATE_LIMITED, 0),
    P("throttl", RATE_LIMITED, 0),
    P("too many messages", RATE_LIMITED, 0),
    P("sending too fast", RATE_LIMITED, 0),
    P("too fast", RATE_LIMITED, 0),
    P("sending rate", RATE_LIMITED, 0),
    P("submission rate", RATE_LIMITED, 0),             /* Postfix anvil: Message submission rate ... */
    P("too much mail", RATE_LIMITED, 0),               /* Postfix: Error: too much mail from <ip> */
    P("sending limit", RATE_LIMITED, 0),
    P("sending quota", RATE_LIMITED, 0),
    P("relay quota", RATE_LIMITED, 0),
    P("too many recipients", TOO_MANY_RECIPIENTS, 0),
    P("too many rcpt", TOO_MANY_RECIPIENTS, 0),
    P("maximum number of recipients", TOO_MANY_RECIPIENTS, 0),
    P("recipient limit", TOO_MANY_RECIPIENTS, 0),

    /* Greylisting */
    P("greylist", GREYLISTED, 0),
    P("graylist", GREYLISTED, 0),
    P("grey-list", GREYLISTED, 0),
    P("gray-list", GREYLISTED, 0),
    P("grey list", GREYLISTED, 0),

    /* Relay and SMTP AUTH */
    P("without authentication", AUTH_REQUIRED, 0),
    P("open relay", POLICY, 0),
    P("relay access denied", RELAY_DENIED, 0),
    P("relaying denied", RELAY_DENIED, 0),
    P("relay denied", RELAY_DENIED, 0),
    P("relay not permitted", RELAY_DENIED, 0),
    P("relaying not permitted", RELAY_DENIED, 0),
    P("not permitted to relay", RELAY_DENIED, 0),
    P("relay not allowed", RELAY_DENIED, 0),
    P("relaying not allowed", RELAY_DENIED, 0),
    P("unable to relay", RELAY_DENIED, 0),
    P("no relaying", RELAY_DENIED, 0),
    P("we do not relay", RELAY_DENIED, 0),
    P("insecure mail relay", RELAY_DENIED, 0),
    P("authentication required", AUTH_REQUIRED, 0),
    P("authentication is required", AUTH_REQUIRED, 0),
    P("smtp authentication", AUTH_REQUIRED, 0),
    P("authentication failed", AUTH_REQUIRED, 0),
    P("authentication credentials invalid", AUTH_REQUIRED, 0),
    P("invalid credentials", AUTH_REQUIRED, 0),

    /* TLS */
    P("must issue a starttls", TLS_REQUIRED, 0),
    P("starttls", TLS_REQUIRED, 0),
    P("tls required", TLS_REQUIRED, 0),
    P("tls is required", TLS_REQUIRED, 0),
    P("requires tls", TLS_REQUIRED, 0),
    P("encryption required", TLS_REQUIRED, 0),
    P("encryption needed", TLS_REQUIRED, 0),
    P("mta-sts", TLS_REQUIRED, 0),
    P("does not support tls", TLS_REQUIRED, 0),
    P("tls not available", TLS_REQUIRED, 0),

    /* Envelope sender and HELO identity */
    P("sender address rejected", SENDER_REJECTED, 0),
    P("sender was rejected", SENDER_REJECTED, 0),
    P("sender rejected", SENDER_REJECTED, 0),
    P("domain of sender address", SENDER_REJECTED, 0),
    P("sender domain", SENDER_REJECTED, 0),
    P("unroutable sender", SENDER_REJECTED, 0),
    P("sender verify failed", SENDER_REJECTED, 0),
    P("sender verification", SENDER_REJECTED, 0),
    P("invalid sender", SENDER_REJECTED, 0),
    P("bad sender", SENDER_REJECTED, 0),
    P("my name was rejected", SENDER_REJECTED, 0),
    P("helo command rejected", SENDER_REJECTED, 0),
    P("fully-qualified", SENDER_REJECTED, 0),
    P("purported responsible address", SENDER_REJECTED, 0),

    /* Content */
    P("spam & virus", SPAM_CONTENT, 0),                /* Barracuda's "Spam & Virus Firewall" */
    P("virus", VIRUS_DETECTED, 0),
    P("malware", VIRUS_DETECTED, 0),
    P("infected", VIRUS_DETECTED, 0),
    P("prohibited attachment", VIRUS_DETECTED, 0),
    P("attachment not allowed", VIRUS_DETECTED, 0),
    P("attachment is not allowed", VIRUS_DETECTED, 0),
    P("dangerous attachment", VIRUS_DETECTED, 0),
    P("unsolicited bulk", SPAM_CONTENT, 0),
    P("content rejected", SPAM_CONTENT, 0),
    P("phish", SPAM_CONTENT, 0),
    P("spam", SPAM_CONTENT, 0),
    P("unsolicited", REPUTATION, 0),
    P("reputation", REPUTATION, 0),
    P("complaints", REPUTATION, 0),
    P("message too big", MESSAGE_TOO_LARGE, 0),
    P("message too large", MESSAGE_TOO_LARGE, 0),
    P("too large", MESSAGE_TOO_LARGE, 0),
    P("size exceeds", MESSAGE_TOO_LARGE, 0),
    P("size limit", MESSAGE_TOO_LARGE, 0),
    P("exceeds size", MESSAGE_TOO_LARGE, 0),
    P("length exceeds", MESSAGE_TOO_LARGE, 0),
    P("larger than", MESSAGE_TOO_LARGE, 0),
    P("rfc 5322", MESSAGE_INVALID, 0),
    P("rfc5322", MESSAGE_INVALID, 0),
    P("rfc 2822", MESSAGE_INVALID, 0),
    P("rfc2822", MESSAGE_INVALID, 0),
    P("not rfc compliant", MESSAGE_INVALID, 0),        /* Yahoo: Headers are not RFC compliant */
    P("8-bit data", MESSAGE_INVALID, 0),
    P("8bit data", MESSAGE_INVALID, 0),
    P("bare linefeed", MESSAGE_INVALID, 0),
    P("bare lf", MESSAGE_INVALID, 0),
    P("invalid mime", MESSAGE_INVALID, 0),
    P("header error", MESSAGE_INVALID, 0),
    P("duplicate header", MESSAGE_INVALID, 0),
    P("media error", MESSAGE_INVALID, 0),

    /* Local policy */
    P("policy reasons", POLICY, 0),
    P("local policy", POLICY, 0),
    P("denied by policy", POLICY, 0),
    P("policy violation", POLICY, 0),
    P("smtp server of your isp", POLICY, 0),
    P("delivery not authorized", POLICY, 0),
    P("not accepting connections", POLICY, 0),
    P("invalid ip for sending", POLICY, 0),
    P("not a member of this mailing list", POLICY, 0),
    P("refused to talk to me", POLICY, 0),             /* Postfix: the greeting was a refusal */
    P("administratively denied", POLICY, 0),

    /* Recipient domain */
    P("host or domain name not found", DOMAIN_NOT_FOUND, 0),
    P("name service error", NETWORK_ERROR, 0),
    P("host unknown", DOMAIN_NOT_FOUND, 0),
    P("unknown host", DOMAIN_NOT_FOUND, 0),
    P("host not found", DOMAIN_NOT_FOUND, 0),
    P("domain not found", DOMAIN_NOT_FOUND, 0),
    P("no such domain", DOMAIN_NOT_FOUND, 0),
    P("domain does not exist", DOMAIN_NOT_FOUND, 0),
    P("because the domain*couldn't be found", DOMAIN_NOT_FOUND, 0),
    P("dns lookup failure", DOMAIN_NOT_FOUND, 0),
    P("domain is not reachable", DOMAIN_NOT_FOUND, 0),
    P("unrouteable address", DOMAIN_NOT_FOUND, 0),
    P("unroutable address", DOMAIN_NOT_FOUND, 0),
    P("does not accept mail", DOMAIN_NOT_FOUND, 0),
    P("not accepting network messages", DOMAIN_NOT_FOUND, 0), /* X.3.2 in a 5xx */
    P("no mx", DOMAIN_NOT_FOUND, 0),
    P("null mx", DOMAIN_NOT_FOUND, 0),
    P("indicated no smtp service", DOMAIN_NOT_FOUND, 0),
    P("couldn't find any host", DOMAIN_NOT_FOUND, 0),
    P("couldn't find a mail exchanger", DOMAIN_NOT_FOUND, 0),
    P("illegal host/domain", DOMAIN_NOT_FOUND, 0),
    P("invalid domain", DOMAIN_NOT_FOUND, 0),

    /* Recipient mailbox */
    P("account is disabled", MAILBOX_DISABLED, 0),
    P("account has been disabled", MAILBOX_DISABLED, 0),
    P("account disabled", MAILBOX_DISABLED, 0),
    P("mailbox disabled", MAILBOX_DISABLED, 0),
    P("mailbox is disabled", MAILBOX_DISABLED, 0),
    P("disabled recipient", MAILBOX_DISABLED, 0),
    P("account is locked", MAILBOX_DISABLED, 0),
    P("suspended", MAILBOX_DISABLED, 0),
    P("deactivated", MAILBOX_DISABLED, 0),
    P("mailbox is inactive", MAILBOX_DISABLED, 0),
    P("account is inactive", MAILBOX_DISABLED, 0),
    P("address syntax", INVALID_ADDRESS, 0),
    P("malformed address", INVALID_ADDRESS, 0),
    P("syntax error in address", INVALID_ADDRESS, 0),
    P("syntactically invalid", INVALID_ADDRESS, 0),
    P("user unknown", USER_UNKNOWN, 0),
    P("unknown user", USER_UNKNOWN, 0),
    P("no such user", USER_UNKNOWN, 0),
    P("no such mailbox", USER_UNKNOWN, 0),
    P("no such recipient", USER_UNKNOWN, 0),
    P("no such address", USER_UNKNOWN, 0),
    P("no mailbox here", USER_UNKNOWN, 0),
    P("mailbox not found", USER_UNKNOWN, 0),
    P("user not found", USER_UNKNOWN, 0),
    P("unknown recipient", USER_UNKNOWN, 0),
    P("recipient unknown", USER_UNKNOWN, 0),
    P("addressee unknown", USER_UNKNOWN, 0),
    P("invalid recipient", USER_UNKNOWN, 0),
    P("invalid mailbox", USER_UNKNOWN, 0),
    P("invalid user", USER_UNKNOWN, 0),
    P("illegal user", USER_UNKNOWN, 0),
    P("illegal alias", USER_UNKNOWN, 0),
    P("unknown or illegal", USER_UNKNOWN, 0),
    P("not a valid mailbox", USER_UNKNOWN, 0),
    P("not a valid recipient", USER_UNKNOWN, 0),       /* AOL: delivery error: dd Not a valid recipient */
    P("no valid recipients", USER_UNKNOWN, 0),
    P("invalid final delivery", USER_UNKNOWN, 0),
    P("address couldn't be found", USER_UNKNOWN, 0),
    P("mailbox unavailable", USER_UNKNOWN, 0),         /* seed 550 */
    P("mailbox*does not exist", USER_UNKNOWN, 0),
    P("user*does not exist", USER_UNKNOWN, 0),
    P("user not exist", USER_UNKNOWN, 0),
    P("account*does not exist", USER_UNKNOWN, 0),
    P("recipient*does not exist", USER_UNKNOWN, 0),
    P("address*does not exist", USER_UNKNOWN, 0),
    P("mailbox has moved", USER_UNKNOWN, 0),
    P("not our user", USER_UNKNOWN, 0),
    P("no longer", USER_UNKNOWN, 0),
    P("rcp-p1", USER_UNKNOWN, 0),                      /* Facebook */

    /* Transport: loops, expiry, network */
    P("too many hops", ROUTING_ERROR, 0),
    P("hop count", ROUTING_ERROR, 0),
    P("mail loop", ROUTING_ERROR, 0),
    P("routing loop", ROUTING_ERROR, 0),
    P("loops back", ROUTING_ERROR, 0),
    P("loop detected", ROUTING_ERROR, 0),
    P("forwarded more than the maximum", ROUTING_ERROR, 0),
    P("message expired", EXPIRED, 0),
    P("retry timeout exceeded", EXPIRED, 0),
    P("envelope expired", EXPIRED, 0),
    P("delivery time expired", EXPIRED, 0),
    P("could not deliver for the last", EXPIRED, 0),
    P("not delivered within", EXPIRED, 0),
    P("unable to deliver*after", EXPIRED, 0),
    P("delivery failed*attempts", EXPIRED, 0),
    P("will be retried for", EXPIRED, 0),
    P("has been delayed", EXPIRED, 0),
    P("all hosts have been failing", EXPIRED, 0),
    P("connection timed out", NETWORK_ERROR, 0),
    P("timed out", NETWORK_ERROR, 0),
    P("connection refused", NETWORK_ERROR, 0),
    P("no route to host", NETWORK_ERROR, 0),
    P("lost connection", NETWORK_ERROR, 0),
    P("connection reset", NETWORK_ERROR, 0),
    P("host name lookup failure", NETWORK_ERROR, 0),
    P("network error", NETWORK_ERROR, 0),
    P("network is unreachable", NETWORK_ERROR, 0),
    P("host not reachable", NETWORK_ERROR, 0),
    P("unable to connect", NETWORK_ERROR, 0),
    P("establish an smtp connection", NETWORK_ERROR, 0),
    P("did not accept our requests to connect", NETWORK_ERROR, 0),

    /* Server trouble */
    P("resources temporarily unavailable", TEMPORARY_FAILURE, 0),
    P("insufficient system storage", TEMPORARY_FAILURE, 0),
    P("internal error", TEMPORARY_FAILURE, 0),
    P("internal system error", TEMPORARY_FAILURE, 0),
    P("system error", TEMPORARY_FAILURE, 0),
    P("local error", TEMPORARY_FAILURE, 0),
    P("server busy", TEMPORARY_FAILURE, 0),
    P("temporary system problem", TEMPORARY_FAILURE, 0),
    P("temporarily rejected", TEMPORARY_FAILURE, 0),
    P("mailer error", TEMPORARY_FAILURE, 0),
    P("ldap server", TEMPORARY_FAILURE, 0),

    /* ESP suppression lists (no remote reply) */
    P("suppression list", SUPPRESSED, 0),
    P("suppressed sending", SUPPRESSED, 0),
    P("bounced address", SUPPRESSED, 0),
    P("unsubscribed address", SUPPRESSED, 0),

};

/* ---- 3. hints: used when the enhanced code is absent or generic ------------ */
static const classify_phrase classify_hints[] = {
    /* Where in the transaction the server refused (MTA wrappings) */
    P("in reply to mail from command", SENDER_REJECTED, 0),
    P("after mail from", SENDER_REJECTED, 0),
    P("after initial connection", POLICY, 0),
    P("recipient address rejected", USER_UNKNOWN, 0),
    P("invalid address", USER_UNKNOWN, 0),             /* weak: X.1.3 in "501 5.1.3 Invalid address" wins */
    P("access denied", POLICY, 0),
    P("not allowed", POLICY, 0),
    P("prohibited", POLICY, 0),
    P("blocked", POLICY, 0),
    P("rejected", POLICY, 0),
    P("policy", POLICY, 0),
    P("syntax error", PROTOCOL_ERROR, 0),
    P("bad sequence", PROTOCOL_ERROR, 0),
    P("command not recognized", PROTOCOL_ERROR, 0),
    P("unrecognized command", PROTOCOL_ERROR, 0),
    P("not implemented", PROTOCOL_ERROR, 0),
    P("need rcpt", PROTOCOL_ERROR, 0),
    P("rcpt first", PROTOCOL_ERROR, 0),
    P("mail first", PROTOCOL_ERROR, 0),
    P("service unavailable", TEMPORARY_FAILURE, 0),
    P("temporarily unavailable", TEMPORARY_FAILURE, 0),
    P("try again later", TEMPORARY_FAILURE, 0),
    P("try later", TEMPORARY_FAILURE, 0),
    P("temporary failure", TEMPORARY_FAILURE, 0),
    P("giving up", EXPIRED, 0),
    P("in the queue too long", EXPIRED, 0),
    P("queued mail for delivery", ACCEPTED, 0),        /* seed 250; counts only with no 4xx/5xx */
    P("queued as", ACCEPTED, 0),
};

/* ---- 2. RFC 3463 enhanced codes (class 4 or 5), IANA registry + providers --- */
#define E(s, lo, hi, reason, flags) { s, lo, hi, SMTPKIT_REASON_##reason, flags, "X." #s "." #lo "-" #hi }
static const classify_enhanced classify_enhanced_codes[] = {
    /* Provider details first (Microsoft 3-digit, Gmail reuses) */
    E(7, 606, 649, BLOCKLISTED, 0),      /* Microsoft: banned sending IP */
    E(7, 650, 699, REPUTATION, 0),       /* Microsoft 4.7.650/651: IP reputation */
    E(7, 509, 509, AUTH_FAILED, 0),      /* Microsoft: DMARC */
    E(7, 515, 515, AUTH_FAILED, 0),      /* Microsoft: authentication level */
    E(7, 520, 520, POLICY, 0),           /* Microsoft: external forwarding */
    E(7, 500, 599, RATE_LIMITED, 0),     /* Microsoft 4.7.500-599 (AS throttling); 5.7.509/515 are phrases */
    E(7, 700, 750, REPUTATION, 0),       /* Microsoft tenant/IP blocks */
    E(7, 124, 136, POLICY, 0),           /* Microsoft group/recipient restrictions */
    E(2, 121, 121, RATE_LIMITED, 0),     /* Microsoft: sender's hourly limit */
    E(2, 122, 122, RATE_LIMITED, 0),     /* Microsoft: recipient's hourly limit (see phrase for RCPT side) */
    E(4, 316, 318, NETWORK_ERROR, 0),    /* Microsoft connection errors */
    E(1, 351, 351, USER_UNKNOWN, 0),     /* Microsoft: unknown recipient from the remote server */
    E(4, 300, 300, EXPIRED, 0),          /* Microsoft: message expired */
    E(4, 312, 312, NETWORK_ERROR, 0),    /* Microsoft: DNS query failed */
    E(6, 211, 211, MESSAGE_INVALID, 0),
    E(4, 14, 14, ROUTING_ERROR, 0),      /* Microsoft: hop count exceeded */
    /* RFC 3463 / 5248 registry */
    E(0, 0, 0, UNKNOWN, GENERIC),
    E(1, 0, 0, USER_UNKNOWN, GENERIC),
    E(1, 1, 1, USER_UNKNOWN, 0),
    E(1, 2, 2, DOMAIN_NOT_FOUND, 0),
    E(1, 3, 3, INVALID_ADDRESS, 0),
    E(1, 4, 4, USER_UNKNOWN, 0),
    E(1, 5, 5, ACCEPTED, GENERIC),
    E(1, 6, 6, USER_UNKNOWN, 0),
    E(1, 7, 8, SENDER_REJECTED, 0),
    E(1, 9, 9, UNKNOWN, GENERIC),
    E(1, 10, 10, DOMAIN_NOT_FOUND, 0),
    E(2, 0, 0, USER_UNKNOWN, GENERIC),
    E(2, 1, 1, MAILBOX_DISABLED, 0),
    E(2, 2, 2, MAILBOX_FULL, 0),
    E(2, 3, 3, MESSAGE_TOO_LARGE, 0),
    E(2, 4, 4, UNKNOWN, GENERIC),
    E(3, 0, 0, TEMPORARY_FAILURE, GENERIC),
    E(3, 1, 1, TEMPORARY_FAILURE, 0),
    E(3, 2, 2, TEMPORARY_FAILURE, 0),
    E(3, 3, 3, PROTOCOL_ERROR, 0),
    E(3, 4, 4, MESSAGE_TOO_LARGE, 0),
    E(3, 5, 5, TEMPORARY_FAILURE, 0),
    E(3, 6, 6, ACCEPTED, GENERIC),
    E(4, 0, 0, NETWORK_ERROR, GENERIC),
    E(4, 1, 2, NETWORK_ERROR, 0),
    E(4, 3, 3, TEMPORARY_FAILURE, 0),
    E(4, 4, 4, DOMAIN_NOT_FOUND, 0),
    E(4, 5, 5, TEMPORARY_FAILURE, 0),
    E(4, 6, 6, ROUTING_ERROR, 0),
    E(4, 7, 7, EXPIRED, 0),
    E(5, 0, 2, PROTOCOL_ERROR, GENERIC),
    E(5, 3, 3, TOO_MANY_RECIPIENTS, 0),
    E(5, 4, 5, PROTOCOL_ERROR, GENERIC),
    E(5, 6, 6, AUTH_REQUIRED, 0),
    E(6, 0, 6, MESSAGE_INVALID, 0),
    E(6, 7, 7, INVALID_ADDRESS, 0),
    E(6, 8, 8, PROTOCOL_ERROR, 0),
    E(6, 9, 9, MESSAGE_INVALID, 0),
    E(6, 10, 10, PROTOCOL_ERROR, 0),
    E(7, 0, 0, POLICY, GENERIC),
    E(7, 1, 1, POLICY, GENERIC),
    E(7, 2, 3, POLICY, 0),
    E(7, 4, 6, TLS_REQUIRED, 0),
    E(7, 7, 7, MESSAGE_INVALID, 0),
    E(7, 8, 8, AUTH_REQUIRED, 0),
    E(7, 9, 9, AUTH_REQUIRED, GENERIC),   /* Yahoo sends 5.7.9 for policy refusals too */
    E(7, 10, 11, TLS_REQUIRED, 0),
    E(7, 12, 12, AUTH_REQUIRED, 0),
    E(7, 13, 13, MAILBOX_DISABLED, 0),
    E(7, 14, 14, AUTH_REQUIRED, 0),
    E(7, 15, 15, POLICY, 0),
    E(7, 16, 16, MESSAGE_TOO_LARGE, 0),
    E(7, 17, 17, USER_UNKNOWN, 0),
    E(7, 18, 18, DOMAIN_NOT_FOUND, 0),
    E(7, 19, 19, POLICY, 0),
    E(7, 20, 24, AUTH_FAILED, 0),
    E(7, 25, 25, REVERSE_DNS, 0),
    E(7, 26, 26, AUTH_FAILED, 0),
    E(7, 27, 27, SENDER_REJECTED, 0),     /* Gmail: SPF did not pass (its text says so) */
    E(7, 28, 28, REPUTATION, 0),
    E(7, 29, 29, AUTH_FAILED, 0),         /* Gmail: no TLS (its text says so) */
    E(7, 30, 30, TLS_REQUIRED, 0),        /* Gmail: DKIM (its text says so) */
    E(7, 32, 32, AUTH_FAILED, 0),         /* Gmail: DMARC alignment (unregistered) */
    E(7, 57, 57, AUTH_REQUIRED, 0),       /* Microsoft: anonymous mail not allowed */
};

/* ---- 4. reply codes (RFC 5321, 3207, 4954, 5248, 7504), the last resort ----- */
#define C(lo, hi, reason, action, expl) { lo, hi, SMTPKIT_REASON_##reason, action, expl, #lo "-" #hi }
#define NOACT -1
static const classify_code classify_codes[] = {
    C(200, 299, ACCEPTED, NOACT, NULL),
    C(421, 421, TEMPORARY_FAILURE, SMTPKIT_ACTION_REDUCE_RATE,
      "The server closed the connection for now (421), often after many messages or "
      "connections in a short time: retry later and send fewer messages to this domain"),
    C(450, 450, TEMPORARY_FAILURE, SMTPKIT_ACTION_REDUCE_RATE,
      "The mailbox is temporarily unavailable (450): retry later and send fewer "
      "messages to this domain"),
    C(451, 451, TEMPORARY_FAILURE, NOACT, NULL),
    C(452, 452, TEMPORARY_FAILURE, SMTPKIT_ACTION_REDUCE_RATE,
      "The server is short of storage or throttling (452): retry later and send "
      "fewer messages to this domain"),
    C(454, 454, TEMPORARY_FAILURE, NOACT, NULL),
    C(455, 455, PROTOCOL_ERROR, NOACT, NULL),
    C(400, 499, TEMPORARY_FAILURE, NOACT, NULL),
    C(500, 504, PROTOCOL_ERROR, NOACT, NULL),
    C(521, 521, DOMAIN_NOT_FOUND, NOACT, NULL),
    C(523, 523, TLS_REQUIRED, NOACT, NULL),
    C(525, 525, MAILBOX_DISABLED, NOACT, NULL),
    C(530, 530, AUTH_REQUIRED, NOACT, NULL),
    C(534, 535, AUTH_REQUIRED, NOACT, NULL),
    C(538, 538, TLS_REQUIRED, NOACT, NULL),
    C(551, 551, USER_UNKNOWN, NOACT, NULL),
    C(552, 552, MAILBOX_FULL, NOACT, NULL),
    C(553, 553, INVALID_ADDRESS, NOACT, NULL),
    C(554, 554, UNKNOWN, SMTPKIT_ACTION_REMOVE_ADDRESS,
      "The server refused the message without a usable reason (554): remove the "
      "address from the list unless the text says otherwise"),
    C(555, 555, PROTOCOL_ERROR, NOACT, NULL),
    C(556, 556, DOMAIN_NOT_FOUND, NOACT, NULL),
    C(500, 599, UNKNOWN, NOACT, NULL),
};

#undef P
#undef E
#undef C
#undef NOACT
#undef RCPT
#undef GENERIC

#endif
