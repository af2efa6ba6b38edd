
prod-eu	eu-west-1node-7"0.1.0)ï¾­Þð­‹@è×•ÿ¼1HÒ	