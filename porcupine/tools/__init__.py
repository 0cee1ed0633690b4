"""Developer tools for porcupine: reference-history reader, screenshot check, benchmark."""
