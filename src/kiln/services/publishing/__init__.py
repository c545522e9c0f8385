"""Publishing kiln images to clouds: ``kiln image publish AMI --to aws`` (EBS direct APIs + RegisterImage)."""
