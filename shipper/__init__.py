"""shipper: a log pipeline for AWS Lambda fleets (distribution `lambda-shipper`)."""

__version__ = "0.1.0"
