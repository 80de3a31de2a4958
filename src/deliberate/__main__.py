from deliberate.cli import main

main()
