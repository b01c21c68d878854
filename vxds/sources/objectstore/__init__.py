"""Object-store sources (s3://, gs://, az://) over one shared base."""
