from prnet.cli import main

main()
