// model placeholder
