"""Event bus: versioned events, transactional outbox, relay, inbox, two transports behind one port."""
