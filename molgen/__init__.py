"""molgen: generative design of molecules and other graphs."""
