import streamlit as st

st.title("Hello Streamlit")
name = st.text_input("Your name", value="spacehub")
st.write(f"Hello, {name}!")

if "clicks" not in st.session_state:
    st.session_state.clicks = 0
if st.button("Click me"):
    st.session_state.clicks += 1
st.write(f"Clicked {st.session_state.clicks} times")
