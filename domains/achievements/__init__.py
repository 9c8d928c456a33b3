"""The achievements domain: rules over events, counters per user, awards."""
