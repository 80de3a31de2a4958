"""Training the generator: data made by search (`export`), and the trainers that will use it."""
