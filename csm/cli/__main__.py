from csm.cli.main import main

main()
