"""The messaging_consumers domain: the e-mails facts call for, sent through a `Mailer`."""
