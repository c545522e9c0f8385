"""Image inventory: the installed packages of any AMI or Image Builder image, and its SBOMs."""
