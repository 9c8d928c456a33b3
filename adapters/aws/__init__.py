"""Adapters on Amazon Web Services: SNS, SQS and EventBridge through aiobotocore, or botocore
in a worker thread (`AwsSettings.sdk`); DynamoDB through aioboto3."""
