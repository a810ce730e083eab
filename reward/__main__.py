from reward.cli.main import main

main()
