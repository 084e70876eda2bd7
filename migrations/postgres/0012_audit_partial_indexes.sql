-- Every index on audit_event is paid for by every audit write, and token issuance writes the most.
-- Partial indexes skip what a filter never needs them for:
--   application_id / user_id: only rows that have one (a client_credentials token has no user);
--   category: not the `token` category — under load it is most of the log, so "category = token"
--   finds its rows at once scanning newest first. New token events store NULL in the derived
--   `category` column (readers take the category from the event name; the filter for `token` is
--   `coalesce(category, 'token') = 'token'`), so they do not enter the index at all.
drop index audit_event_category_idx;
drop index audit_event_application_idx;
drop index audit_event_user_idx;
create index audit_event_category_idx on audit_event (category, seq) where category is not null;
create index audit_event_application_idx on audit_event (application_id, seq)
    where application_id is not null;
create index audit_event_user_idx on audit_event (user_id, seq) where user_id is not null;
