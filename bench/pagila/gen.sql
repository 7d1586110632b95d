SET session_replication_role = replica;  -- no FK/trigger checks while loading
INSERT INTO country (country_id, country) SELECT n, 'Country ' || n FROM generate_series(1,109) n;
INSERT INTO city (city_id, city, country_id) SELECT n, 'City ' || n, 1 + n % 109 FROM generate_series(1,600) n;
INSERT INTO address (address_id, address, district, city_id, postal_code, phone)
  SELECT n, n || ' Main Street', 'District ' || n % 378, 1 + n % 600, lpad((n*37 % 99999)::text, 5, '0'), '555' || n FROM generate_series(1,603) n;
INSERT INTO language (language_id, name) SELECT n, 'Lang ' || n FROM generate_series(1,6) n;
INSERT INTO category (category_id, name) SELECT n, (ARRAY['Action','Animation','Children','Classics','Comedy','Documentary','Drama','Family','Foreign','Games','Horror','Music','New','Sci-Fi','Sports','Travel'])[n] FROM generate_series(1,16) n;
INSERT INTO actor (actor_id, first_name, last_name) SELECT n, 'FIRST' || n % 128, 'LAST' || n % 121 FROM generate_series(1,200) n;
INSERT INTO staff (staff_id, first_name, last_name, address_id, store_id, username) VALUES (1,'Mike','Hillyer',3,1,'Mike'),(2,'Jon','Stephens',4,2,'Jon');
INSERT INTO store (store_id, manager_staff_id, address_id) VALUES (1,1,1),(2,2,2);
INSERT INTO film (film_id, title, description, release_year, language_id, rental_duration, rental_rate, length, replacement_cost, rating, fulltext)
  SELECT n, 'FILM TITLE ' || n, 'A story number ' || n, 2006, 1, 3 + n % 5, (ARRAY[0.99,2.99,4.99])[1 + n % 3], 46 + n % 140, 9.99 + n % 21,
         (ARRAY['G','PG','PG-13','R','NC-17'])[1 + n % 5]::mpaa_rating, to_tsvector('film ' || n)
  FROM generate_series(1,1000) n;
INSERT INTO film_actor (actor_id, film_id) SELECT DISTINCT 1 + (n * 7919) % 200, 1 + n % 1000 FROM generate_series(1,5462) n;
INSERT INTO film_category (film_id, category_id) SELECT n, 1 + n % 16 FROM generate_series(1,1000) n;
INSERT INTO customer (customer_id, store_id, first_name, last_name, email, address_id, active)
  SELECT n, 1 + n % 2, 'FIRST' || n, 'LAST' || n % 590, 'customer' || n || '@sakilacustomer.org', 5 + n % 598, 1 FROM generate_series(1,599) n;
INSERT INTO inventory (inventory_id, film_id, store_id) SELECT n, 1 + n % 958, 1 + n % 2 FROM generate_series(1,4581) n;
INSERT INTO rental (rental_id, rental_date, inventory_id, customer_id, return_date, staff_id)
  SELECT n, timestamptz '2022-02-14' + n * interval '47 minutes', 1 + (n * 31) % 4581, 1 + (n * 17) % 599,
         timestamptz '2022-02-14' + n * interval '47 minutes' + (1 + n % 9) * interval '1 day', 1 + n % 2
  FROM generate_series(1,16044) n;
INSERT INTO payment (payment_id, customer_id, staff_id, rental_id, amount, payment_date)
  SELECT n, 1 + (n * 17) % 599, 1 + n % 2, n, (ARRAY[0.99,2.99,4.99,5.99,9.99])[1 + n % 5], timestamptz '2022-02-14' + n * interval '47 minutes' + interval '1 hour'
  FROM generate_series(1,16044) n;
SET session_replication_role = origin;
ANALYZE;
