from owp_bot.cli import main

raise SystemExit(main())
