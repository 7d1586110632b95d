-- What a music store application on Chinook runs (bench/advisor_real.py --db chinook).
-- a customer's invoices, newest first, and one invoice with its lines
SELECT invoice_id, invoice_date, total FROM invoice WHERE customer_id = 4242 ORDER BY invoice_date DESC LIMIT 20;
SELECT il.invoice_line_id, t.name, il.unit_price, il.quantity FROM invoice_line il JOIN track t ON t.track_id = il.track_id WHERE il.invoice_id = 20000;
SELECT count(*), sum(total) FROM invoice WHERE customer_id = 777 AND invoice_date >= '2024-01-01';
-- the catalogue: tracks of an album, of a genre, of an artist
SELECT track_id, name, milliseconds FROM track WHERE album_id = 1200 ORDER BY track_id;
SELECT track_id, name, unit_price FROM track WHERE genre_id = 7 ORDER BY name LIMIT 50;
SELECT t.name, al.title FROM track t JOIN album al ON al.album_id = t.album_id WHERE al.artist_id = 90 ORDER BY al.title, t.track_id;
SELECT al.album_id, al.title FROM album al WHERE al.artist_id = 1500 ORDER BY al.title;
-- playlist contents
SELECT t.track_id, t.name, t.milliseconds FROM playlist_track pt JOIN track t ON t.track_id = pt.track_id WHERE pt.playlist_id = 5 ORDER BY t.name LIMIT 100;
SELECT count(*) FROM playlist_track WHERE track_id = 31000;
-- search by name prefix
SELECT track_id, name FROM track WHERE name LIKE 'Love%' ORDER BY name LIMIT 20;
SELECT artist_id, name FROM artist WHERE name LIKE 'The B%' ORDER BY name LIMIT 20;
SELECT album_id, title FROM album WHERE title LIKE 'Greatest%' ORDER BY title LIMIT 20;
-- customers: by email, by place, a support rep's book
SELECT * FROM customer WHERE email = '42.luisg@embraer.com.br';
SELECT customer_id, first_name, last_name FROM customer WHERE country = 'Brazil' AND city = 'São Paulo' ORDER BY last_name LIMIT 50;
SELECT customer_id, first_name, last_name, email FROM customer WHERE support_rep_id = 4 ORDER BY last_name, first_name LIMIT 50;
-- sales: by country, by month, by city, by genre, by artist, by support rep
SELECT billing_country, count(*), sum(total) FROM invoice GROUP BY billing_country ORDER BY 3 DESC;
SELECT date_trunc('month', invoice_date) AS month, count(*), sum(total) FROM invoice WHERE invoice_date >= '2024-01-01' AND invoice_date < '2025-01-01' GROUP BY 1 ORDER BY 1;
SELECT invoice_id, invoice_date, total FROM invoice WHERE invoice_date >= '2025-06-01' AND invoice_date < '2025-06-08' ORDER BY invoice_date;
SELECT count(*), sum(total) FROM invoice WHERE billing_city = 'Paris';
SELECT count(*), sum(total) FROM invoice WHERE billing_city = 'Berlin' AND invoice_date >= '2025-01-01';
SELECT t.track_id, t.name, sum(il.quantity) AS sold FROM invoice_line il JOIN track t ON t.track_id = il.track_id WHERE t.genre_id = 1 GROUP BY t.track_id, t.name ORDER BY sold DESC LIMIT 10;
SELECT il.track_id, sum(il.unit_price * il.quantity) FROM invoice_line il WHERE il.track_id = 1234 GROUP BY il.track_id;
SELECT e.employee_id, e.last_name, sum(i.total) FROM employee e JOIN customer c ON c.support_rep_id = e.employee_id JOIN invoice i ON i.customer_id = c.customer_id WHERE i.invoice_date >= '2025-01-01' GROUP BY e.employee_id, e.last_name;
