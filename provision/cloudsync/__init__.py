"""The model sync as it runs in the cloud: the FC handler and the invoke-and-wait client."""
