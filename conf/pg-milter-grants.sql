-- What helpgate-milter needs on a PostgreSQL case store, and nothing more
-- (INSTALL, section 11).  Run as the database owner after the first
-- helpgate-worker has created the schema:
--   psql -v milter=helpgate_milter -d helpgate -f pg-milter-grants.sql
-- The milter opens cases, records messages and staff commands, reopens a
-- case the client writes to (status, pause, resolution deadline), and
-- marks the worker's letters as seen by the relay.  It never sends mail,
-- reads a diagnosis or changes a customer.
GRANT SELECT ON helpgate_schema, customers, cases, messages, outbox, events, mail_commands
    TO :"milter";
GRANT INSERT ON cases, messages, mail_commands, pauses TO :"milter";
GRANT UPDATE (status, updated, urgency, first_response_at, paused_at, paused_total,
    resolve_due, resolved_at) ON cases TO :"milter";
GRANT UPDATE (due) ON events TO :"milter";
GRANT UPDATE (relay_seen) ON outbox TO :"milter";
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO :"milter";
