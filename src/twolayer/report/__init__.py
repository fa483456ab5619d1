"""Pictures and numbers about a trained model: plots and calibration."""
