"""The shared contracts, one owner each: photo categories, S3 key scheme, the ImageCategories record."""
