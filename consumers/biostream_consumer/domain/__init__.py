"""Pure rules of the consumer: identifiers, vocabularies, catch-up ordering. No I/O, no clock."""
