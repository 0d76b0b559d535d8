"""The command line of `interpose` and `interpose-dump` (`args`), and `interpose-dump` itself (`dump`)."""
