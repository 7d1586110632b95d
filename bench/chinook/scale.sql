-- Chinook (github.com/lerocha/chinook-database, Chinook_PostgreSql.sql, loaded first)
-- scaled up in its own distributions: the catalogue (artists, albums, tracks,
-- playlist entries) 10x, customers, invoices and invoice lines 100x. Copy k of a
-- row keeps its columns (countries, cities, support reps, genres, media types,
-- prices, quantities), its references point at copy k of what they referenced
-- (tracks: copy k mod 10), invoice dates move by whole weeks within 2021-2025,
-- names and emails get a suffix so that prefixes and lookups stay selective.
-- Then ANALYZE; the load stays in pg_stat_user_tables.
INSERT INTO artist (artist_id, name)
  SELECT artist_id + 275 * k, name || ' ' || k FROM artist, generate_series(1, 9) k;
INSERT INTO album (album_id, title, artist_id)
  SELECT album_id + 347 * k, title || ' ' || k, artist_id + 275 * k
  FROM album, generate_series(1, 9) k;
INSERT INTO track (track_id, name, album_id, media_type_id, genre_id, composer, milliseconds,
                   bytes, unit_price)
  SELECT track_id + 3503 * k, name || ' ' || k, album_id + 347 * k, media_type_id, genre_id,
         composer, milliseconds, bytes, unit_price
  FROM track, generate_series(1, 9) k;
INSERT INTO playlist_track (playlist_id, track_id)
  SELECT playlist_id, track_id + 3503 * k FROM playlist_track, generate_series(1, 9) k;
INSERT INTO customer (customer_id, first_name, last_name, company, address, city, state,
                      country, postal_code, phone, fax, email, support_rep_id)
  SELECT customer_id + 59 * k, first_name, last_name, company, address, city, state, country,
         postal_code, phone, fax, k || '.' || email, support_rep_id
  FROM customer, generate_series(1, 99) k;
INSERT INTO invoice (invoice_id, customer_id, invoice_date, billing_address, billing_city,
                     billing_state, billing_country, billing_postal_code, total)
  SELECT invoice_id + 412 * k, customer_id + 59 * k,
         date '2021-01-01' + ((invoice_date::date - date '2021-01-01') + 7 * k) % 1826,
         billing_address, billing_city, billing_state, billing_country, billing_postal_code,
         total
  FROM invoice, generate_series(1, 99) k;
INSERT INTO invoice_line (invoice_line_id, invoice_id, track_id, unit_price, quantity)
  SELECT invoice_line_id + 2240 * k, invoice_id + 412 * k, track_id + 3503 * (k % 10),
         unit_price, quantity
  FROM invoice_line, generate_series(1, 99) k;
ANALYZE;
