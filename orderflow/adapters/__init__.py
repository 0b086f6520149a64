"""AWS I/O lives here and only here: DynamoDB repositories, Step Functions, and friends."""
