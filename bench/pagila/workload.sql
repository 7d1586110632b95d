-- customer lookups
SELECT * FROM customer WHERE email = 'customer42@sakilacustomer.org';
SELECT customer_id, first_name, last_name FROM customer WHERE last_name = 'LAST17' ORDER BY first_name;
SELECT * FROM customer WHERE lower(email) = lower('Customer7@sakilacustomer.org');
-- rentals of a customer, recent rentals, overdue rentals
SELECT r.rental_id, r.rental_date, f.title FROM rental r JOIN inventory i ON i.inventory_id = r.inventory_id JOIN film f ON f.film_id = i.film_id WHERE r.customer_id = 42 ORDER BY r.rental_date DESC LIMIT 20;
SELECT count(*) FROM rental WHERE rental_date >= '2022-06-01' AND rental_date < '2022-06-08';
SELECT * FROM rental WHERE return_date IS NULL AND rental_date < '2022-03-01';
SELECT rental_id FROM rental WHERE inventory_id = 1234 AND return_date > '2022-05-01';
SELECT * FROM rental WHERE staff_id = 1 AND rental_date >= '2023-01-01' AND rental_date < '2023-01-02';
-- films by category, title, rating
SELECT f.film_id, f.title FROM film f JOIN film_category fc ON fc.film_id = f.film_id JOIN category c ON c.category_id = fc.category_id WHERE c.name = 'Comedy' ORDER BY f.title LIMIT 50;
SELECT * FROM film WHERE title = 'FILM TITLE 321';
SELECT film_id, title FROM film WHERE rating = 'PG-13' AND length > 120 ORDER BY title;
SELECT a.first_name, a.last_name FROM actor a JOIN film_actor fa ON fa.actor_id = a.actor_id WHERE fa.film_id = 77;
SELECT i.inventory_id FROM inventory i WHERE i.film_id = 500 AND i.store_id = 2;
-- payments by customer and date
SELECT sum(amount) FROM payment WHERE customer_id = 42;
SELECT * FROM payment WHERE payment_date >= '2022-07-01' AND payment_date < '2022-07-02' ORDER BY payment_date;
SELECT customer_id, sum(amount) FROM payment WHERE payment_date >= '2022-08-01' AND payment_date < '2022-09-01' GROUP BY customer_id ORDER BY 2 DESC LIMIT 10;
SELECT * FROM payment WHERE rental_id = 9000;
SELECT c.customer_id, c.email, sum(p.amount) FROM customer c JOIN payment p ON p.customer_id = c.customer_id WHERE c.store_id = 1 AND p.payment_date >= '2023-01-01' GROUP BY c.customer_id, c.email;
