"""The recorder: an App Engine flexible service that receives call audio over websockets."""
