-- Application search without a function call per row: a lowercased name, and one index that holds
-- every column the list filters and sorts on, so a search scans the (small) index, not the table.
alter table application add column name_lower text not null default '';
update application set name_lower = lower(name);
create index application_search_idx
    on application (name_lower, client_id, app_type, status, created_at, application_id);
-- Sorting by name (any case), and the keyset after a given row in that order.
create index application_name_lower_idx on application (name_lower, application_id);
