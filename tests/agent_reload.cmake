add_script_test(agent_reload agent_reload.sh)
