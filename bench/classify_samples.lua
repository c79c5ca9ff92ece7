--- Typical one-line replies, as an SMTP client meets them per recipient:
-- the seed's table plus common provider answers. Used by the classifier bench.
return {
  "250 2.0.0 Ok: queued as 4Bx7Yb2mQ9z1",
  "250 Queued mail for delivery",
  "250 2.1.5 Ok",
  "421 Message from (192.0.2.7) temporarily deferred",
  "450 too frequent connects from 198.37.147.135, please try again later.",
  "451 Temporary local problem - please try later",
  "452 Too many recipients received this hour (throttled)",
  "550 Requested action not taken: mailbox unavailable",
  "550 You are temporarily blocked from sending emails due to repeated bad requests.",
  "551 User does not exist.",
  "553 Invalid/inactive user.",
  "554 ERROR: Mail refused",
  "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown in local recipient table",
  "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking"
    .. " the recipient's email address for typos or unnecessary spaces. gsmtp",
  "452 4.2.2 The email account that you tried to reach is over quota. gsmtp",
  "421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred due to unexpected volume or"
    .. " user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
  "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
  "550 5.7.606 Access denied, banned sending IP [192.0.2.225].",
  "451 4.7.1 Greylisting in action, please come back later",
  "552 5.2.2 <a@example.com>: Recipient address rejected: Mailbox full",
  "550 5.7.26 This message does not pass authentication checks (SPF and DKIM both do not pass).",
  "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
  "554 5.7.9 Message not accepted for policy reasons. See https://senders.yahooinc.com/error-codes",
  "451 4.3.0 Mail server temporarily rejected message.",
  "550 5.7.1 Relaying denied",
  "552 5.3.4 Message size exceeds fixed maximum message size",
}
